"""vppctl: the command line of the VPP internal market."""
