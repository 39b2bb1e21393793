print("rmr-sim: not yet")
