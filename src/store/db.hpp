// store/db: the SQLite connection (WAL, foreign keys), versioned migrations, statements and
// transactions. The only place in the project that includes sqlite3.h.
// Thread safety: one connection guarded by one mutex; take Db::lock() around every use of a Stmt.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "core/result.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace mc::store {

// The schema version this binary writes. A database with a higher user_version is refused.
int schema_version();

class Db;

// A prepared statement. Bind indexes start at 1, column indexes at 0.
class Stmt {
public:
    Stmt(Db& db, std::string_view sql);
    ~Stmt();
    Stmt(const Stmt&) = delete;
    Stmt& operator=(const Stmt&) = delete;

    Stmt& bind(int index, std::string_view value);
    Stmt& bind(int index, const std::string& value) { return bind(index, std::string_view(value)); }
    Stmt& bind(int index, const char* value) { return bind(index, std::string_view(value)); }
    Stmt& bind(int index, int64_t value);
    Stmt& bind(int index, int value) { return bind(index, static_cast<int64_t>(value)); }
    Stmt& bind(int index, double value);
    Stmt& bind_null(int index);
    Stmt& bind(int index, const std::optional<std::string>& value);

    // Steps once: true when a row is ready, false when done. Throws std::runtime_error on failure
    // (caught by Db::guard and turned into an Error).
    bool step();
    void run();    // Steps to completion.
    void reset();  // Ready to bind and run again.

    std::string text(int col) const;
    int64_t integer(int col) const;
    double real(int col) const;
    bool is_null(int col) const;

private:
    Db& m_db;
    sqlite3_stmt* m_stmt = nullptr;
};

class Db {
public:
    // Opens (creating if needed) the database at `path`, applies pending migrations.
    static Result<std::unique_ptr<Db>> open(const std::string& path);
    ~Db();

    std::unique_lock<std::recursive_mutex> lock() { return std::unique_lock(m_mutex); }
    void exec(std::string_view sql);  // Throws std::runtime_error on failure.
    int64_t last_insert_id() const;
    int changes() const;
    int user_version();
    const std::string& path() const { return m_path; }

    // Runs `fn` under the lock inside a transaction; an exception rolls back and becomes an Error.
    // Transactions nest: inside another one this is a savepoint, so store calls compose into one
    // atomic change (an outer `fn` that sees an inner call fail throws StoreFailure to roll back all).
    template <class F>
    auto transaction(F&& fn) -> Result<decltype(fn())>;

    sqlite3* handle() { return m_db; }
    std::string last_error() const;

private:
    Db() = default;
    Result<void> migrate();

    sqlite3* m_db = nullptr;
    std::string m_path;
    std::recursive_mutex m_mutex;
    int m_depth = 0;  // Open transactions on this connection (guarded by m_mutex).
};

// Thrown inside a transaction to roll it back with this error (kept as it is by db_error).
struct StoreFailure : std::runtime_error {
    explicit StoreFailure(Error e) : std::runtime_error(e.message), error(std::move(e)) {}
    Error error;
};

// Unwraps a Result inside a transaction: the value, or a StoreFailure that rolls back.
template <class T>
T value_or_throw(Result<T> r) {
    if (!r) throw StoreFailure(r.error());
    if constexpr (!std::is_void_v<T>) return std::move(*r);
}

Error db_error(const std::exception& e);

template <class F>
auto Db::transaction(F&& fn) -> Result<decltype(fn())> {
    auto guard = lock();
    const bool nested = m_depth > 0;
    try {
        exec(nested ? "SAVEPOINT nested" : "BEGIN IMMEDIATE");
        ++m_depth;
        struct Depth {
            int& d;
            ~Depth() { --d; }
        } depth{m_depth};
        if constexpr (std::is_void_v<decltype(fn())>) {
            fn();
            exec(nested ? "RELEASE nested" : "COMMIT");
            return {};
        } else {
            auto value = fn();
            exec(nested ? "RELEASE nested" : "COMMIT");
            return value;
        }
    } catch (const std::exception& e) {
        try {
            if (nested) {
                exec("ROLLBACK TO nested");
                exec("RELEASE nested");
            } else {
                exec("ROLLBACK");
            }
        } catch (...) {
        }
        return std::unexpected(db_error(e));
    }
}

}  // namespace mc::store
