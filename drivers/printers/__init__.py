"""Receipt printer drivers: ESC/POS over network, serial and USB (python-escpos).

``profiles`` (what a model can do), ``codepages`` (which byte prints which
character), ``writer`` (a job's bytes), ``status`` (DLE EOT), ``connection`` (the link)
and ``printer`` (status, jobs and drawer kicks, async). The register's print queue
is in appliance/printing; the virtual printer that reads these bytes back is in hil/.
"""
