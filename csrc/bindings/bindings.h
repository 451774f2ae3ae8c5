/*
 * featurepipe._speedups: the CPython binding layer over the C kernels in
 * csrc/kernels. These files are the only ones that include Python.h: they
 * parse arguments, hold buffers, build the Python results and release the
 * GIL around kernel calls. module.c owns the module: multi-phase init
 * (PEP 489), per-module state, heap types; each other binding file adds its
 * functions and types through one exec function declared here.
 */
#ifndef FP_BINDINGS_H
#define FP_BINDINGS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* Per-module state (PyModule_GetState): the module's heap types. */
typedef struct {
    PyObject *runner_type;    /* ColumnsRunner (NULL on Windows) */
    PyObject *outbuffer_type; /* the read-only buffers ColumnsRunner.take returns */
} fp_state;

/* Py_mod_exec parts: each adds its functions (and types) to the module. */
int fp_tfrecord_exec(PyObject *module); /* module.c: CRC-32C, TFRecord framing */
int fp_example_exec(PyObject *module);  /* example.c: decode_columns */
int fp_csv_exec(PyObject *module);      /* csv.c: csv_cut, csv_convert, csv_infer */
int fp_columns_exec(PyObject *module);  /* columns.c: fingerprint64, plans, ColumnsRunner */

#endif
