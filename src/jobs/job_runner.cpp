#include "jobs/job_runner.hpp"

#include <algorithm>

#include "core/log.hpp"

namespace mc::jobs {
namespace {

class Context : public JobContext {
public:
    Context(store::JobStore& store, Job& job, std::shared_ptr<std::atomic<bool>> cancel)
        : m_store(store), m_job(job), m_cancel(std::move(cancel)) {}
    void progress(double fraction) override {
        m_job.progress = std::clamp(fraction, 0.0, 1.0);
        (void)m_store.set_progress(m_job.id, m_job.progress);
    }
    bool cancelled() const override { return m_cancel->load(); }
    std::shared_ptr<std::atomic<bool>> cancel_flag() const override { return m_cancel; }

private:
    store::JobStore& m_store;
    Job& m_job;
    std::shared_ptr<std::atomic<bool>> m_cancel;
};

}  // namespace

JobRunner::JobRunner(store::JobStore& store, store::KindFilter filter) : m_store(store), m_filter(std::move(filter)) {}

JobRunner::~JobRunner() { stop(); }

void JobRunner::handle(const std::string& kind, Handler handler) { m_handlers[kind] = std::move(handler); }

void JobRunner::start() {
    if (auto n = m_store.requeue_running(m_filter); n && *n > 0) log::info(*n, " unfinished background job(s) queued again");
    m_thread = std::thread([this] { loop(); });
}

void JobRunner::stop() {
    {
        std::lock_guard lock(m_mu);
        if (m_quit) return;
        m_quit = true;
        if (m_running_cancel) m_running_cancel->store(true);
        m_cv.notify_all();
    }
    if (m_thread.joinable()) m_thread.join();
}

void JobRunner::poke() {
    std::lock_guard lock(m_mu);
    m_poked = true;
    m_cv.notify_all();
}

Result<Job> JobRunner::submit(const std::string& kind, const Json& payload, std::optional<std::string> character_id,
                              std::optional<std::string> chat_id) {
    auto job = m_store.create(kind, payload, std::move(character_id), std::move(chat_id));
    if (job) poke();
    return job;
}

Result<Job> JobRunner::submit_unique(const std::string& kind, const Json& payload, const std::string& chat_id) {
    std::lock_guard lock(m_submit_mu);
    auto active = m_store.active(kind, chat_id);
    if (!active) return std::unexpected(active.error());
    if (*active) return **active;
    return submit(kind, payload, std::nullopt, chat_id);
}

Result<Job> JobRunner::cancel(const std::string& id) {
    auto job = m_store.get(id);
    if (!job) return job;
    job->status = "cancelled";
    auto changed = m_store.update_if(*job, {"queued", "running"});
    if (!changed) return std::unexpected(changed.error());
    if (!*changed) {
        auto now = m_store.get(id);
        return fail(ErrorCode::Conflict, "job " + id + " has already ended (" + (now ? now->status : "gone") + ")", "id");
    }
    {
        std::lock_guard lock(m_mu);
        if (m_running_id == id && m_running_cancel) m_running_cancel->store(true);
    }
    return m_store.get(id);
}

void JobRunner::loop() {
    std::unique_lock lock(m_mu);
    while (!m_quit) {
        lock.unlock();
        auto next = m_store.next_queued(m_filter);
        lock.lock();
        if (!next || !*next) {
            // Nothing queued; retries and new jobs poke us, and a slow timer covers anything missed.
            m_cv.wait_for(lock, std::chrono::seconds(2), [&] { return m_quit || m_poked; });
            m_poked = false;
            continue;
        }
        Job job = std::move(**next);
        auto handler = m_handlers.find(job.kind);
        m_running_id = job.id;
        m_running_cancel = std::make_shared<std::atomic<bool>>(false);
        auto cancel = m_running_cancel;
        lock.unlock();

        // Status changes are compare-and-set: a job cancelled between being picked and starting
        // is not started, and one cancelled while running stays cancelled whatever it returns.
        job.status = "running";
        if (auto started = m_store.update_if(job, {"queued"}); !started || !*started) {
            lock.lock();
            m_running_id.clear();
            m_running_cancel.reset();
            // A database error: wait before trying again rather than spin.
            if (!started) m_cv.wait_for(lock, std::chrono::seconds(1), [&] { return m_quit; });
            continue;
        }
        Outcome out = Outcome::failed("no handler for job kind '" + job.kind + "'");
        if (handler != m_handlers.end()) {
            Context ctx(m_store, job, cancel);
            try {
                out = handler->second(job, ctx);
            } catch (const std::exception& e) {
                out = Outcome::failed(std::string("job crashed: ") + e.what());
            }
        }
        {
            if (out.kind == Outcome::Kind::Retry) {
                job.status = "queued";
                job.progress = 0;
            } else if (out.kind == Outcome::Kind::Done) {
                job.status = "done";
                job.progress = 1;
                job.result = out.result;
            } else {
                job.status = "failed";
                job.error = out.error;
            }
            auto finished = m_store.update_if(job, {"running"});
            if (finished && *finished && job.status == "failed") {
                log::warn("job ", job.id, " (", job.kind, ") failed: ", out.error);
            }
        }
        lock.lock();
        m_running_id.clear();
        m_running_cancel.reset();
        if (out.kind == Outcome::Kind::Retry && !m_quit) {
            // Let whatever preempted the job finish before trying again.
            m_cv.wait_for(lock, std::chrono::milliseconds(500), [&] { return m_quit; });
        }
    }
}

}  // namespace mc::jobs
