func runSimBench(_ args: [String]) { print("sim bench: not yet") }
