/* featurepipe._speedups, part: columns (see _speedups.h). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "_speedups.h"

static PyMethodDef columns_methods[] = {
    {NULL, NULL, 0, NULL},
};

int
fp_columns_register(PyObject *module)
{
    return PyModule_AddFunctions(module, columns_methods);
}
