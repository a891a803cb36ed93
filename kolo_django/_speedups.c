/* Call capture before Python 3.12: a frame evaluation hook (PEP 523), or a
 * profile function, in C.
 *
 * Any profile or trace function puts CPython in its tracing mode, which slows
 * every instruction of every frame (about x1.7 on a Django view on 3.11). On
 * 3.11 a frame evaluation function sees each frame as it starts and after it
 * ends, with the interpreter in its normal mode: for code outside the project
 * it answers from a decision cached on the code object itself and evaluates
 * the frame as usual. Project frames are handed to Python callbacks
 * (kolo_django.recording.frames). Where another tool has its own evaluation
 * function (a debugger), and on 3.10, a C profile function does the same.
 *
 * Python >= 3.12 uses sys.monitoring instead and does not need this module.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <frameobject.h>

#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030C0000
#define EVAL_HOOK 1
#include <opcode.h>
/* The leading fields of CPython 3.11's _PyInterpreterFrame (internal, and
 * the same in every 3.11 release): the code, the frame object if one was
 * made, and the caller. */
typedef struct {
    PyObject *f_func;
    PyObject *f_globals;
    PyObject *f_builtins;
    PyObject *f_locals;
    PyCodeObject *f_code;
    PyFrameObject *frame_obj;
    struct _PyInterpreterFrame *previous;
    _Py_CODEUNIT *prev_instr;
    int stacktop;
    char is_entry;
    char owner;
} FrameHead;

#define OWNED_BY_GENERATOR 1
#define RESUMABLE (CO_GENERATOR | CO_COROUTINE | CO_ASYNC_GENERATOR)
#else
#define EVAL_HOOK 0
#endif

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
/* on_call(frame) and on_return(frame, value) for project frames, and
 * on_suspend(frame) for a generator or coroutine that yielded (the
 * evaluation hook knows; a profile function's Python callbacks find out). */
static PyObject *on_call = NULL;
static PyObject *on_return = NULL;
static PyObject *on_suspend = NULL;

/* The profile object of a thread: pause() while the recorder runs code of
 * its own (encoding rows, reading backing rows), whose project-code calls it
 * would only ignore. */
typedef struct {
    PyObject_HEAD
    int paused;
} State;

#if EVAL_HOOK
/* The State of each thread capturing through the evaluation hook. */
static Py_tss_t thread_state = Py_tss_NEEDS_INIT;
/* Threads capturing through the hook: it is removed when none is left. */
static Py_ssize_t hook_users = 0;
static int prefer_hook = 1;
#endif

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

static void
call_back(PyObject *callback, PyObject *frame, PyObject *value)
{
    /* The callbacks run with no exception set (one may be on its way out of
     * the frame, or thrown into it), and leave none behind. */
    PyObject *type, *exc, *tb;
    PyErr_Fetch(&type, &exc, &tb);
    PyObject *result = value == NULL ? PyObject_CallOneArg(callback, frame)
                                     : PyObject_CallFunctionObjArgs(callback, frame, value, NULL);
    if (result == NULL) {
        PyErr_Clear();
    }
    else {
        Py_DECREF(result);
    }
    PyErr_Restore(type, exc, tb);
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
    /* arg is NULL when an exception ends the frame. An error here would be
     * raised in the user's frame: never. The callbacks guard themselves;
     * call_back() is the last line. */
    if (what == PyTrace_CALL) {
        call_back(on_call, (PyObject *)frame, NULL);
    }
    else {
        call_back(on_return, (PyObject *)frame, arg ? arg : Py_None);
    }
    return 0;
}


#if EVAL_HOOK
/* The frame object of a frame the interpreter is about to evaluate. CPython
 * makes one only for the running frame, and skips a frame that has not
 * reached its first instruction: for the moment it takes, this frame is made
 * the running one, as if at that instruction. Its caller is set as the
 * evaluation would set it. */
static PyFrameObject *
frame_object(PyThreadState *tstate, FrameHead *head)
{
    if (head->frame_obj != NULL) {
        return head->frame_obj;
    }
    _PyCFrame *cframe = tstate->cframe;
    struct _PyInterpreterFrame *current = cframe->current_frame;
    _Py_CODEUNIT *prev_instr = head->prev_instr;
    head->previous = current;
    head->prev_instr = _PyCode_CODE(head->f_code) + head->f_code->_co_firsttraceable;
    cframe->current_frame = (struct _PyInterpreterFrame *)head;
    PyFrameObject *made = PyEval_GetFrame();
    cframe->current_frame = current;
    head->prev_instr = prev_instr;
    return made != NULL && made == head->frame_obj ? made : NULL;
}

static PyObject *
evaluate(PyThreadState *tstate, struct _PyInterpreterFrame *iframe, int throwflag)
{
    State *state = (State *)PyThread_tss_get(&thread_state);
    FrameHead *head = (FrameHead *)iframe;
    if (state == NULL || state->paused || cached(head->f_code) == NOT_PROJECT
        /* A generator function's call only makes the generator: its frame is
         * copied into it, and must not have a frame object yet. Its first
         * resumption is the call a profile function would see. */
        || (head->f_code->co_flags & RESUMABLE && head->owner != OWNED_BY_GENERATOR)) {
        return _PyEval_EvalFrameDefault(tstate, iframe, throwflag);
    }
    /* The callbacks' own frames pass through here too: not recorded. */
    state->paused++;
    PyFrameObject *frame = frame_object(tstate, head);
    int project = 0;
    /* No frame object (PyEval_GetFrame() cleared its error): not recorded. An
     * exception set here is one thrown into the frame, and stays set. */
    if (frame != NULL) {
        Py_INCREF(frame);
        PyObject *type, *exc, *tb;
        PyErr_Fetch(&type, &exc, &tb);
        project = is_project(head->f_code, frame, 1);
        PyErr_Restore(type, exc, tb);
        if (project) {
            call_back(on_call, (PyObject *)frame, NULL);
        }
    }
    state->paused--;
    if (!project) {
        Py_XDECREF(frame);
        return _PyEval_EvalFrameDefault(tstate, iframe, throwflag);
    }
    PyObject *result = _PyEval_EvalFrameDefault(tstate, iframe, throwflag);
    /* The frame is not cleared yet: its locals are still there to read. */
    state = (State *)PyThread_tss_get(&thread_state);
    if (state != NULL && !state->paused) {
        state->paused++;
        if (result != NULL && head->owner == OWNED_BY_GENERATOR
            && _Py_OPCODE(*head->prev_instr) == YIELD_VALUE) {
            call_back(on_suspend, (PyObject *)frame, NULL);
        }
        else {
            call_back(on_return, (PyObject *)frame, result ? result : Py_None);
        }
        state->paused--;
    }
    Py_DECREF(frame);
    return result;
}
#endif

static PyObject *
speedups_configure(PyObject *self, PyObject *args)
{
    PyObject *new_decide, *new_call, *new_return, *new_suspend;
    if (!PyArg_ParseTuple(args, "OOOO:configure", &new_decide, &new_call, &new_return,
                          &new_suspend)) {
        return NULL;
    }
    Py_INCREF(new_decide);
    Py_INCREF(new_call);
    Py_INCREF(new_return);
    Py_INCREF(new_suspend);
    Py_XSETREF(decide, new_decide);
    Py_XSETREF(on_call, new_call);
    Py_XSETREF(on_return, new_return);
    Py_XSETREF(on_suspend, new_suspend);
    Py_RETURN_NONE;
}

#if EVAL_HOOK
static int
hook_start(void)
{
    PyInterpreterState *interp = PyInterpreterState_Get();
    _PyFrameEvalFunction installed = _PyInterpreterState_GetEvalFrameFunc(interp);
    if (!prefer_hook || (installed != _PyEval_EvalFrameDefault && installed != evaluate)) {
        return 0; /* another tool's evaluation function: leave it be */
    }
    PyObject *state = PyType_GenericNew(&StateType, NULL, NULL);
    if (state == NULL) {
        PyErr_Clear();
        return 0;
    }
    if (PyThread_tss_set(&thread_state, state) != 0) {
        Py_DECREF(state);
        return 0;
    }
    if (hook_users++ == 0) {
        _PyInterpreterState_SetEvalFrameFunc(interp, evaluate);
    }
    return 1;
}

static int
hook_stop(void)
{
    State *state = (State *)PyThread_tss_get(&thread_state);
    if (state == NULL) {
        return 0;
    }
    PyThread_tss_set(&thread_state, NULL);
    Py_DECREF(state);
    if (--hook_users == 0) {
        PyInterpreterState *interp = PyInterpreterState_Get();
        if (_PyInterpreterState_GetEvalFrameFunc(interp) == evaluate) {
            _PyInterpreterState_SetEvalFrameFunc(interp, _PyEval_EvalFrameDefault);
        }
    }
    return 1;
}
#endif

static PyObject *
speedups_start(PyObject *self, PyObject *unused)
{
    if (on_call == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "configure() first");
        return NULL;
    }
#if EVAL_HOOK
    if (PyThread_tss_get(&thread_state) != NULL || hook_start()) {
        Py_RETURN_NONE;
    }
#endif
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
#if EVAL_HOOK
    State *hooked = (State *)PyThread_tss_get(&thread_state);
    if (hooked != NULL) {
        return hooked;
    }
#endif
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
speedups_mode(PyObject *self, PyObject *unused)
{
#if EVAL_HOOK
    if (PyThread_tss_get(&thread_state) != NULL) {
        return PyUnicode_FromString("eval");
    }
#endif
    if (this_thread_state() != NULL) {
        return PyUnicode_FromString("profile");
    }
    Py_RETURN_NONE;
}

static PyObject *
speedups_use_eval_hook(PyObject *self, PyObject *arg)
{
    int truth = PyObject_IsTrue(arg);
    if (truth < 0) {
        return NULL;
    }
#if EVAL_HOOK
    prefer_hook = truth;
    return PyBool_FromLong(1);
#else
    return PyBool_FromLong(0);
#endif
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
#if EVAL_HOOK
    if (hook_stop()) {
        Py_RETURN_NONE;
    }
#endif
    if (PyThreadState_Get()->c_profilefunc == profile) {
        PyEval_SetProfile(NULL, NULL);
    }
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
     "configure(decide, on_call, on_return, on_suspend): the Python callbacks."},
    {"start", speedups_start, METH_NOARGS, "Capture this thread's calls."},
    {"active", speedups_active, METH_NOARGS, "Whether this thread's calls are captured here."},
    {"mode", speedups_mode, METH_NOARGS,
     "How this thread's calls are captured: 'eval', 'profile', or None."},
    {"use_eval_hook", speedups_use_eval_hook, METH_O,
     "use_eval_hook(flag): whether start() may use the evaluation hook; "
     "returns whether this Python has one."},
    {"pause", speedups_pause, METH_NOARGS, "Ignore this thread's calls until resume()."},
    {"resume", speedups_resume, METH_NOARGS, "Undo one pause()."},
    {"stop", speedups_stop, METH_NOARGS, "Stop capturing this thread's calls."},
    {"reset", speedups_reset, METH_NOARGS, "Forget every code object's decision."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT, "kolo_django._speedups",
    "Call capture before Python 3.12: a frame evaluation hook or a profile function, in C.", -1, methods,
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
#if EVAL_HOOK
    if (PyThread_tss_create(&thread_state) != 0) {
        Py_DECREF(module);
        PyErr_SetString(PyExc_RuntimeError, "no thread-specific storage key left");
        return NULL;
    }
#endif
    extra_index = REQUEST_EXTRA_INDEX(NULL);
    if (extra_index < 0) {
        Py_DECREF(module);
        PyErr_SetString(PyExc_RuntimeError, "no code object extra slot left");
        return NULL;
    }
    return module;
}
