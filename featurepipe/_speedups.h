/*
 * featurepipe._speedups is one extension module built from several C files.
 * _speedups.c owns the module and its init; each other file adds its
 * functions to the module through one register function declared here.
 */
#ifndef FEATUREPIPE_SPEEDUPS_H
#define FEATUREPIPE_SPEEDUPS_H

#include <Python.h>

/* _speedups_csv.c: CSV rows -> serialized tf.Examples (featurepipe.convert). */
int fp_csv_register(PyObject *module);

/* _speedups_columns.c: feature-column id work (featurepipe.hashing / keras). */
int fp_columns_register(PyObject *module);

#endif
