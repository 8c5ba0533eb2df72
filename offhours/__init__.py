"""The composition root: the ``offhours`` command, which puts the other packages together.

Every subcommand is here, and so is the assembly of the service's processes: the
broker, the stream worker and the web server, started and stopped in order. The
commands are the README's "Command line" section.

- :mod:`offhours.cli`: the entry point: assembles the subcommands, ``config check``,
  exit codes;
- :mod:`offhours.commands`: ``replay``, ``run``, ``ingest``, ``decisions``, ``sla report``;
- :mod:`offhours.coverage_commands`: ``coverage check``, ``at``, ``week``, ``ics``;
- :mod:`offhours.service`: ``offhours run`` and ``offhours ingest``: the processes and
  their web server, the start banner;
- :mod:`offhours.replay`: events through the real pipeline, decisions out;
- ``python -m offhours`` runs :func:`offhours.cli.main`.

May import every other package; none imports it (the top layer).
"""
