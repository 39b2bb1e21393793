// RMRSim
