// rmr-bench: benchmarks that print ratios against a baseline run side by side.
//   rmr-bench map     dirty-map memory and speed (issue 2 targets)
//   rmr-bench store   libaio store vs fio on the same file (issue 5 targets)
//   rmr-bench sim     simulator events/s and simulated:wall ratio (issue 3 targets)
let arguments = Array(CommandLine.arguments.dropFirst())
switch arguments.first {
case "map": runMapBench(Array(arguments.dropFirst()))
case "store": runStoreBench(Array(arguments.dropFirst()))
case "sim": runSimBench(Array(arguments.dropFirst()))
default:
    print("usage: rmr-bench map|store|sim [options]")
}
