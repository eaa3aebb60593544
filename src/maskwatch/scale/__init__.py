"""More than one machine: Ray (batch archives through Ray Data: ``maskwatch detect --engine ray``; cameras as Ray
actors: ``maskwatch serve --engine ray``). Optional: ``pip install 'maskwatch[scale]'``; nothing here is imported
unless ``--engine ray`` asks for it."""
