func runMapBench(_ args: [String]) { print("map bench: not yet") }
