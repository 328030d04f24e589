// app/app: the command line and the server's lifetime — parse flags, load settings, open the data
// folder and database, wire the HTTP routes, serve until SIGINT/SIGTERM.
// Thread safety: run_main is called once from main().
#pragma once

namespace mc::app {

int run_main(int argc, char** argv);

}  // namespace mc::app
