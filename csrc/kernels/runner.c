/* The job queue and worker threads of ColumnsRunner (see runner.h). Plain C kernel. */
#include "runner.h"

#ifndef _WIN32
#include <time.h>
#include <unistd.h>

/* A worker leaves after this long without a batch to start, so a runner whose
 * iterator was abandoned holds no thread; a push starts one again. */
#define IDLE_SECONDS 2

static void *
runner_main(void *arg)
{
    FpRunner *r = arg;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        int timed_out = 0;
        while (r->todo == NULL && !r->stop && !timed_out) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += IDLE_SECONDS;
            timed_out = pthread_cond_timedwait(&r->work, &r->mu, &until) != 0;
        }
        if (r->stop || r->todo == NULL) {
            break;
        }
        Job *j = r->todo;
        r->todo = j->next;
        pthread_mutex_unlock(&r->mu);
        OutBuf *outs;
        int st = fp_run_batch(r->pl, j->recs, j->nrows, &outs);
        pthread_mutex_lock(&r->mu);
        j->outs = outs;
        j->status = st;
        pthread_cond_broadcast(&r->done);
    }
    r->live--;
    pthread_cond_broadcast(&r->done); /* stop waits for live == 0 */
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

/* Starts a worker if there are fewer than nthreads and a job to start; with mu held.
 * -1 when none runs and none could be started. */
static int
runner_ensure_worker(FpRunner *r)
{
    if (r->live >= r->nthreads || r->todo == NULL) {
        return 0;
    }
    pthread_attr_t attr;
    pthread_t t;
    int ok = pthread_attr_init(&attr) == 0;
    ok = ok && pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED) == 0;
    ok = ok && pthread_create(&t, &attr, runner_main, r) == 0;
    pthread_attr_destroy(&attr);
    if (ok) {
        r->live++;
        return 0;
    }
    return r->live > 0 ? 0 : -1;
}

int
fp_runner_init(FpRunner *r, const Plan *pl, fp_ssize nthreads)
{
    if (pthread_mutex_init(&r->mu, NULL) != 0 || pthread_cond_init(&r->work, NULL) != 0 ||
        pthread_cond_init(&r->done, NULL) != 0) {
        return -1;
    }
    r->pl = pl;
    r->head = r->tail = r->todo = NULL;
    r->nthreads = nthreads;
    r->live = 0;
    r->stop = 0;
    r->pid = getpid();
    return 0;
}

void
fp_runner_destroy(FpRunner *r)
{
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->work);
    pthread_cond_destroy(&r->done);
}

int
fp_runner_forked(const FpRunner *r)
{
    return r->pid != getpid();
}

int
fp_runner_push(FpRunner *r, Job *j)
{
    pthread_mutex_lock(&r->mu);
    if (r->stop) {
        pthread_mutex_unlock(&r->mu);
        return -2;
    }
    if (r->tail != NULL) {
        r->tail->next = j;
    } else {
        r->head = j;
    }
    r->tail = j;
    if (r->todo == NULL) {
        r->todo = j;
    }
    int started = runner_ensure_worker(r);
    pthread_cond_signal(&r->work);
    pthread_mutex_unlock(&r->mu);
    return started;
}

int
fp_runner_head_ready(FpRunner *r, int *ready)
{
    pthread_mutex_lock(&r->mu);
    Job *j = r->head;
    *ready = j->status != JOB_PENDING;
    int started = *ready ? 0 : runner_ensure_worker(r);
    pthread_mutex_unlock(&r->mu);
    return started;
}

void
fp_runner_wait(FpRunner *r, Job *j)
{
    pthread_mutex_lock(&r->mu);
    while (j->status == JOB_PENDING) {
        pthread_cond_wait(&r->done, &r->mu);
    }
    pthread_mutex_unlock(&r->mu);
}

Job *
fp_runner_pop(FpRunner *r)
{
    pthread_mutex_lock(&r->mu);
    Job *j = r->head;
    r->head = j->next;
    if (r->head == NULL) {
        r->tail = NULL;
    }
    pthread_mutex_unlock(&r->mu);
    return j;
}

Job *
fp_runner_stop(FpRunner *r)
{
    if (!fp_runner_forked(r)) {
        pthread_mutex_lock(&r->mu);
        r->stop = 1;
        pthread_cond_broadcast(&r->work);
        while (r->live > 0) {
            pthread_cond_wait(&r->done, &r->mu);
        }
        pthread_mutex_unlock(&r->mu);
    } else {
        /* A forked child has no workers: nothing to wait for (jobs still queued
         * in the parent's runner are handed back; none is being run here). */
        r->live = 0;
    }
    Job *jobs = r->head;
    r->head = r->tail = r->todo = NULL;
    return jobs;
}

fp_ssize
fp_runner_pending(const FpRunner *r)
{
    fp_ssize n = 0;
    for (Job *j = r->head; j != NULL; j = j->next) {
        n++;
    }
    return n;
}

fp_ssize
fp_runner_live(FpRunner *r)
{
    pthread_mutex_lock(&r->mu);
    fp_ssize n = r->live;
    pthread_mutex_unlock(&r->mu);
    return n;
}
#endif /* _WIN32 */
