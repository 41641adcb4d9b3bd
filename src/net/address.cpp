// Placeholder until the net layer lands.
#include "ringway/net/address.hpp"
