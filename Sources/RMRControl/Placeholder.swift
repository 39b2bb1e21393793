// RMRControl
