#include "app/app.hpp"

int main(int argc, char** argv) { return mc::app::run_main(argc, argv); }
