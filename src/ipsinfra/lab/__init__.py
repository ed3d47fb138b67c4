"""The embedded lab: SSH test hosts, nodes and switches the demo and tests run on."""
