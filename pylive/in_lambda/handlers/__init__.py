"""The Lambda handler modules of the relay: each is copied to the top level of its bundle."""
