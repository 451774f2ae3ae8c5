/* featurepipe._speedups, part: csv (see _speedups.h). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "_speedups.h"

static PyMethodDef csv_methods[] = {
    {NULL, NULL, 0, NULL},
};

int
fp_csv_register(PyObject *module)
{
    return PyModule_AddFunctions(module, csv_methods);
}
