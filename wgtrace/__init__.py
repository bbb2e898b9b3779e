"""wgtrace: build a WireGuard relay network as a real lab and find where a packet stops."""
__version__ = "0.1.0"
