/*
 * The job queue and worker threads of ColumnsRunner: plain C kernel (runner.c).
 *
 * Jobs (batches of records) are queued in submission order; up to nthreads
 * detached pthreads run fp_run_batch on them, oldest first, and the caller
 * takes the results in submission order. A worker leaves after a while
 * without a job to start (so an abandoned runner holds no thread); pushing a
 * job starts one again. The binding (csrc/bindings/columns.c) owns what keeps
 * a job's records alive (job->hold) and frees it.
 */
#ifndef FP_KERNELS_RUNNER_H
#define FP_KERNELS_RUNNER_H

#ifndef _WIN32
#include "columns.h"

#include <pthread.h>
#include <sys/types.h>

enum { JOB_PENDING = -1 };

typedef struct Job {
    struct Job *next;
    void *hold;         /* the binding's: what recs point into */
    Str *recs;
    fp_ssize nrows;
    OutBuf *outs;
    int status;         /* JOB_PENDING until a worker has run it, then a RUN_ status */
} Job;

typedef struct {
    const Plan *pl;
    pthread_mutex_t mu;
    pthread_cond_t work; /* a job to start, or stop */
    pthread_cond_t done; /* a job finished */
    Job *head, *tail;    /* submitted and not yet taken, oldest first */
    Job *todo;           /* the oldest job no worker has started */
    fp_ssize nthreads;   /* at most this many workers */
    fp_ssize live;       /* workers running (detached; each leaves after IDLE_SECONDS idle) */
    int stop;
    pid_t pid;           /* the process that made it: a forked child has no workers */
} FpRunner;

/* Initializes a runner of plan pl; -1 when its locks cannot be made. */
int fp_runner_init(FpRunner *r, const Plan *pl, fp_ssize nthreads);

/* Destroys the locks (after fp_runner_stop). */
void fp_runner_destroy(FpRunner *r);

/* Was the runner made in another process (before a fork)? */
int fp_runner_forked(const FpRunner *r);

/* Queues a job and makes sure a worker runs; -1 when none runs and none
 * could be started (the job stays queued), -2 when the runner is stopped
 * (the job is not queued). */
int fp_runner_push(FpRunner *r, Job *j);

/* Is the oldest job done? If not, makes sure a worker runs (-1 as above). */
int fp_runner_head_ready(FpRunner *r, int *ready);

/* Waits until job j is done (blocks: call it without the GIL). */
void fp_runner_wait(FpRunner *r, Job *j);

/* Removes the oldest job from the queue and returns it. */
Job *fp_runner_pop(FpRunner *r);

/* Stops the workers and waits for them to leave (blocks). In a forked child
 * there is nothing to wait for. Returns the jobs not taken (a list through
 * next) for the caller to free; the queue is then empty. */
Job *fp_runner_stop(FpRunner *r);

/* Jobs submitted and not yet taken; workers running now. */
fp_ssize fp_runner_pending(const FpRunner *r);
fp_ssize fp_runner_live(FpRunner *r);

#endif /* _WIN32 */
#endif
