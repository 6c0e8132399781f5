"""The example site's articles: a cover image imagegen generates from the
article's title and summary (IMAGEGEN["IMAGE_FIELDS"] in project/settings.py)."""
