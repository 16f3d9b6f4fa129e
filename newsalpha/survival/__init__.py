"""newsalpha.survival."""
