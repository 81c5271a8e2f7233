"""ichlib: the tested library behind ichbook, an executable paper on intracranial haemorrhage on head CT."""

__version__ = "0.1.0"
