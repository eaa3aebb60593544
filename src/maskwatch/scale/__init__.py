"""More than one machine: Ray (cameras as Ray actors, batch archives through Ray Data). Optional: ``pip install
'maskwatch[scale]'``; nothing here is imported unless ``--engine ray`` (or a batch job on Ray) asks for it."""
