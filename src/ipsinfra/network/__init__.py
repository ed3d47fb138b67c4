"""Switches: collection (netmiko), parsing (ntc-templates, Linux bridge JSON), the port map (§4.6)."""
