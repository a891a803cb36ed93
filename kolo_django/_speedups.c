/* Call capture for Python 3.11: a profile function in C.
 *
 * A Python-level sys.settrace() function runs at every call of every
 * function, and makes CPython 3.11 build a frame object and check for line
 * events at every instruction of every frame. A C profile function sees only
 * calls and returns: for code outside the project it answers from a decision
 * cached on the code object itself, without running any Python. Project
 * frames are handed to Python callbacks (kolo_django.recording.frames).
 *
 * Python >= 3.12 uses sys.monitoring instead and does not need this module.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <frameobject.h>

#if PY_VERSION_HEX >= 0x030C0000
#define GET_EXTRA PyUnstable_Code_GetExtra
#define SET_EXTRA PyUnstable_Code_SetExtra
#define REQUEST_EXTRA_INDEX PyUnstable_Eval_RequestCodeExtraIndex
#else
#define GET_EXTRA _PyCode_GetExtra
#define SET_EXTRA _PyCode_SetExtra
#define REQUEST_EXTRA_INDEX _PyEval_RequestCodeExtraIndex
#endif

/* A code object's cached decision: (generation << 2) | NOT_PROJECT or
 * PROJECT. Decisions of an older generation (before reset()) are stale. */
#define NOT_PROJECT 1
#define PROJECT 2

static Py_ssize_t extra_index = -1;
static uintptr_t generation = 1;
/* decide(frame) -> True, False, or None (no recorder: decide later) */
static PyObject *decide = NULL;
/* on_call(frame) and on_return(frame, value) for project frames */
static PyObject *on_call = NULL;
static PyObject *on_return = NULL;

/* The profile object of a thread: pause() while the recorder runs code of
 * its own (encoding rows, reading backing rows), whose project-code calls it
 * would only ignore. */
typedef struct {
    PyObject_HEAD
    int paused;
} State;

static PyTypeObject StateType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "kolo_django._speedups.State",
    .tp_basicsize = sizeof(State),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
};

static int
cached(PyCodeObject *code)
{
    void *extra = NULL;
    if (GET_EXTRA((PyObject *)code, extra_index, &extra) < 0) {
        PyErr_Clear();
        return 0;
    }
    uintptr_t value = (uintptr_t)extra;
    if (value == 0 || (value >> 2) != generation) {
        return 0;
    }
    return (int)(value & 3);
}

/* 1 for a project frame, 0 otherwise. Never leaves an exception set. */
static int
is_project(PyCodeObject *code, PyFrameObject *frame, int may_decide)
{
    int decision = cached(code);
    if (decision) {
        return decision == PROJECT;
    }
    if (!may_decide || decide == NULL) {
        return 0;
    }
    PyObject *result = PyObject_CallOneArg(decide, (PyObject *)frame);
    if (result == NULL) {
        PyErr_Clear();
        return 0;
    }
    if (result == Py_None) {
        Py_DECREF(result);
        return 0;
    }
    int truth = PyObject_IsTrue(result);
    Py_DECREF(result);
    if (truth < 0) {
        PyErr_Clear();
        return 0;
    }
    uintptr_t value = (generation << 2) | (truth ? PROJECT : NOT_PROJECT);
    if (SET_EXTRA((PyObject *)code, extra_index, (void *)value) < 0) {
        PyErr_Clear();
    }
    return truth;
}

static int
profile(PyObject *obj, PyFrameObject *frame, int what, PyObject *arg)
{
    if ((what != PyTrace_CALL && what != PyTrace_RETURN) || ((State *)obj)->paused) {
        return 0; /* C calls and their returns; the recorder's own work */
    }
    PyCodeObject *code = PyFrame_GetCode(frame);
    int project = is_project(code, frame, what == PyTrace_CALL);
    Py_DECREF(code);
    if (!project) {
        return 0;
    }
    PyObject *result;
    if (what == PyTrace_CALL) {
        result = PyObject_CallOneArg(on_call, (PyObject *)frame);
    }
    else {
        /* arg is NULL when an exception ends the frame */
        result = PyObject_CallFunctionObjArgs(on_return, (PyObject *)frame,
                                              arg ? arg : Py_None, NULL);
    }
    /* An error here would be raised in the user's frame: never. The
     * callbacks guard themselves; this is the last line. */
    if (result == NULL) {
        PyErr_Clear();
    }
    else {
        Py_DECREF(result);
    }
    return 0;
}

static PyObject *
speedups_configure(PyObject *self, PyObject *args)
{
    PyObject *new_decide, *new_call, *new_return;
    if (!PyArg_ParseTuple(args, "OOO:configure", &new_decide, &new_call, &new_return)) {
        return NULL;
    }
    Py_INCREF(new_decide);
    Py_INCREF(new_call);
    Py_INCREF(new_return);
    Py_XSETREF(decide, new_decide);
    Py_XSETREF(on_call, new_call);
    Py_XSETREF(on_return, new_return);
    Py_RETURN_NONE;
}

static PyObject *
speedups_start(PyObject *self, PyObject *unused)
{
    if (on_call == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "configure() first");
        return NULL;
    }
    PyObject *state = PyType_GenericNew(&StateType, NULL, NULL);
    if (state == NULL) {
        return NULL;
    }
    PyEval_SetProfile(profile, state); /* holds its own reference */
    Py_DECREF(state);
    Py_RETURN_NONE;
}

static State *
this_thread_state(void)
{
    PyThreadState *tstate = PyThreadState_Get();
    if (tstate->c_profilefunc != profile) {
        return NULL;
    }
    return (State *)tstate->c_profileobj;
}

static PyObject *
speedups_active(PyObject *self, PyObject *unused)
{
    return PyBool_FromLong(this_thread_state() != NULL);
}

static PyObject *
speedups_pause(PyObject *self, PyObject *unused)
{
    State *state = this_thread_state();
    if (state != NULL) {
        state->paused++;
    }
    Py_RETURN_NONE;
}

static PyObject *
speedups_resume(PyObject *self, PyObject *unused)
{
    State *state = this_thread_state();
    if (state != NULL && state->paused > 0) {
        state->paused--;
    }
    Py_RETURN_NONE;
}

static PyObject *
speedups_stop(PyObject *self, PyObject *unused)
{
    PyEval_SetProfile(NULL, NULL);
    Py_RETURN_NONE;
}

static PyObject *
speedups_reset(PyObject *self, PyObject *unused)
{
    generation++;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"configure", speedups_configure, METH_VARARGS,
     "configure(decide, on_call, on_return): the Python callbacks."},
    {"start", speedups_start, METH_NOARGS, "Profile this thread's calls."},
    {"active", speedups_active, METH_NOARGS, "Whether this thread's calls are profiled here."},
    {"pause", speedups_pause, METH_NOARGS, "Ignore this thread's calls until resume()."},
    {"resume", speedups_resume, METH_NOARGS, "Undo one pause()."},
    {"stop", speedups_stop, METH_NOARGS, "Stop profiling this thread."},
    {"reset", speedups_reset, METH_NOARGS, "Forget every code object's decision."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT, "kolo_django._speedups",
    "Call capture for Python 3.11: a profile function in C.", -1, methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    if (PyType_Ready(&StateType) < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&speedups_module);
    if (module == NULL) {
        return NULL;
    }
    extra_index = REQUEST_EXTRA_INDEX(NULL);
    if (extra_index < 0) {
        Py_DECREF(module);
        PyErr_SetString(PyExc_RuntimeError, "no code object extra slot left");
        return NULL;
    }
    return module;
}
