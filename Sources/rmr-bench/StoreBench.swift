func runStoreBench(_ args: [String]) { print("store bench: not yet") }
