#if canImport(Glibc)
import Glibc
#endif
import RMRSim

// rmr-sim run FILE... [--seed N] [--trace] [--transcript] [--timeline FILE.svg]
// rmr-sim demo [--seed N] [--trace]

func usage() -> Never {
    print("""
    usage: rmr-sim run FILE|DIR... [--seed N] [--trace] [--transcript] [--timeline FILE.svg]
           rmr-sim demo [--seed N] [--trace]
           rmr-sim fuzz --seeds N [--start S] [--profile NAME] [--shard K/N] [--report] [--beyond-budget] [--jobs J]
           rmr-sim fuzz-one SEED [--profile NAME] [--beyond-budget] [--print] | fuzz-one --file SCENARIO
    """)
    exit(2)
}

var args = Array(CommandLine.arguments.dropFirst())
guard let command = args.first else { usage() }
args.removeFirst()
if command == "fuzz" || command == "fuzz-one" {
    exit(fuzzMain(command: command, args: args, executable: CommandLine.arguments[0]))
}
var options = RunOptions(seed: 1)
var files: [String] = []
var i = 0
while i < args.count {
    let a = args[i]
    switch a {
    case "--seed":
        i += 1
        guard i < args.count, let s = UInt64(args[i]) else { usage() }
        options.seed = s
    case "--trace":
        options.trace = { print($0) }
    case "--transcript":
        options.transcript = { print($0) }
    case "--timeline":
        i += 1
        guard i < args.count else { usage() }
        options.timelinePath = args[i]
    default:
        if a.hasPrefix("--") { usage() }
        files.append(a)
    }
    i += 1
}

switch command {
case "run":
    guard !files.isEmpty else { usage() }
    var expanded: [String] = []
    for f in files {
        let inDir = listFiles(f, suffix: ".scenario")
        expanded.append(contentsOf: inDir.isEmpty ? [f] : inDir)
    }
    let (passed, failed) = runScenarioFiles(expanded, options: options) { print($0) }
    print("\(passed) passed, \(failed) failed")
    exit(failed == 0 ? 0 : 1)
case "demo":
    options.transcript = { print($0) }
    let ok = runDemo(options: options) { print($0) }
    exit(ok ? 0 : 1)
default:
    usage()
}
