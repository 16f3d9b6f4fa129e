"""newsalpha.train."""
