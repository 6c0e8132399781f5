"""Content models for the generable-field tests (imagegen.fields): an
article with an image file and its alt text, a profile with a foreign key
to imagegen's GeneratedImage."""
