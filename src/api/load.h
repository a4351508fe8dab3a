/* load.h - loading a handle's view of the file: the superblock and the layer chain, read
 * by rank 0, shared with every rank, applied to the index (docs/architecture.md 7).
 * afmt__load and afmt__reload are declared in file.h, where the other modules find them. */
#ifndef AFMT_LOAD_H
#define AFMT_LOAD_H

#include "api/file.h"

/* COLLECTIVE. afmt__load, with rc this rank's outcome so far (part of the first
 * agreement): the last step of afmt_open and afmt_open_layer. */
int afmt__load_agreed(afmt_file *f, int rc);

#endif
