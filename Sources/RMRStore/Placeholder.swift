// RMRStore
