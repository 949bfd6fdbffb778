"""The conformance suite; collected by the plugin when --world is given."""
