"""Synthetic training data (``maskwatch data synth``): masks drawn, or moved from donor photos, onto unmasked faces,
and hard negatives; ``draw.py`` draws, ``make.py`` writes a class-folder set with its manifest. Training side: it
may import the face detector, never the other way round."""
