// RMRFormat
