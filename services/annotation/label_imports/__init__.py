"""Label imports: labelled data (COCO, YOLO, Pascal VOC, native releases) brought into a project, run as
jobs that report what became of each image. Not to be confused with ingest's import runs, which bring
images only (`proto.ingest.Run`, REST `/imports`): a label import hands its images to one of those.

The client creates a label import, PUTs one file to its presigned URL (a zip of images and annotations,
or the annotation file alone) and starts it. Two `LabelImportJob`s take it through stages kept on its
`imports` row, so that a redelivered job continues where the last one stopped (the scratch directory
is not kept: each job downloads and extracts the file again, the labels job without the images):
- images job, stage upload: the file is parsed first, so a malformed one fails before any image is
  ingested. The images go to ingest (images.py): the zip's are put under the import's prefix of the
  releases bucket and ingest imports that prefix, or the `images` source given (a prefix on the user's
  S3, whose keys ingest sealed when the import was created, so they are never kept in the clear and
  annotation needs no LOUPE_SECRETS_KEY); a native file without images registers the organisation's
  media by content hash, which ingest answers at once (→ labels, and the labels job is submitted).
- stage images: ingest's run is importing them. No job waits for it: the images job ends, and the
  run's finish event moves the import on (→ ingested) and submits the labels job.
- labels job, stage ingested: the run's report maps each image's path to its sample, kept in
  import_images (→ labels).
- stage labels: class, tag and attribute names become the project's ids (missing classes are created
  when asked), and each image's label is written in a savepoint, so that a bad annotation fails only
  its image; a batch of images per transaction, with their import_items rows, so a redelivery skips
  the images already reported (writing.py). Then the import is settled (→ done).

Modules: commands (the bus commands), records (the row, its public form, its jobs), archive (the
uploaded file: download, safe unzip, parse), images (through ingest), writing (the labels), stages
(the jobs).
"""
