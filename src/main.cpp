// ringway: the daemon. Everything but this function lives in libringway.
#include "ringway/app/cli.hpp"

int main(int argc, char** argv) {
  return ringway::app::cli_main(argc, argv);
}
