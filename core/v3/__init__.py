"""Tiny API v3: the client (`client`), OAuth (`oauth`), the token renewer (`tokens`), and the
source the sync modules read through (`source`)."""
