"""Container networking: bridge networks, IPAM, NAT and published ports, embedded DNS."""
