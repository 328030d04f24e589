// jobs/job_runner: runs persistent background jobs one at a time on its own thread, in the order
// they were submitted. A job's handler reports progress, notices cancellation, and may ask to be
// run again later (a summary preempted by a chat turn). Jobs left running by a previous process
// are queued again at start.
// Status changes are compare-and-set (JobStore::update_if): queued -> running only if still queued,
// running -> done/failed/queued only if still running, so a cancel is never overwritten.
// Thread safety: all public members may be called from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "core/result.hpp"
#include "store/job_store.hpp"

namespace mc::jobs {

// What a running handler can do.
class JobContext {
public:
    virtual ~JobContext() = default;
    virtual void progress(double fraction) = 0;
    virtual bool cancelled() const = 0;
    virtual std::shared_ptr<std::atomic<bool>> cancel_flag() const = 0;
};

// A handler's outcome: a result, an error (the job fails), or a request to run again later.
struct Outcome {
    enum class Kind { Done, Failed, Retry } kind = Kind::Done;
    Json result = Json::object();
    std::string error;
    static Outcome done(Json r) { return {Kind::Done, std::move(r), {}}; }
    static Outcome failed(std::string e) { return {Kind::Failed, Json::object(), std::move(e)}; }
    static Outcome retry() { return {Kind::Retry, Json::object(), {}}; }
};

using Handler = std::function<Outcome(const Job& job, JobContext& ctx)>;

class JobRunner {
public:
    // `filter`: the kinds this runner takes (several runners share one store, e.g. pictures render
    // on their own runner so a model download does not hold them up).
    explicit JobRunner(store::JobStore& store, store::KindFilter filter = {});
    ~JobRunner();

    void handle(const std::string& kind, Handler handler);  // Before start().
    void start();
    void stop();  // Cancels the running job and waits for the thread.

    Result<Job> submit(const std::string& kind, const Json& payload, std::optional<std::string> character_id,
                       std::optional<std::string> chat_id);
    // Submits unless a job of this kind for this chat is already queued or running (returns that one).
    Result<Job> submit_unique(const std::string& kind, const Json& payload, const std::string& chat_id);
    Result<Job> cancel(const std::string& id);
    Result<Job> get(const std::string& id) { return m_store.get(id); }
    Result<std::vector<Job>> active_for_chat(const std::string& chat_id) { return m_store.active_for_chat(chat_id); }
    // Wakes the runner (after a retry is due, or new work).
    void poke();

private:
    void loop();
    store::JobStore& m_store;
    store::KindFilter m_filter;
    std::map<std::string, Handler> m_handlers;
    std::mutex m_mu;         // Guards m_quit, m_poked, m_running_id, m_running_cancel.
    std::mutex m_submit_mu;  // Makes submit_unique's check-then-submit atomic.
    std::condition_variable m_cv;
    bool m_quit = false;
    bool m_poked = false;
    std::string m_running_id;
    std::shared_ptr<std::atomic<bool>> m_running_cancel;
    std::thread m_thread;  // The runner; joined by stop() (and the destructor).
};

}  // namespace mc::jobs
