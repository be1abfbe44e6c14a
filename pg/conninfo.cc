#include "pg/conninfo.h"

#include <libpq-fe.h>

#include <cstdlib>
#include <string_view>

namespace sluice::pg {
namespace {

// The options the user gave for a connection: the conninfo's `options`, else PGOPTIONS (which
// libpq would no longer read once `options` is passed explicitly).
std::string UserOptions(const std::string& dsn) {
  std::string options;
  char* error = nullptr;
  if (PQconninfoOption* parsed = PQconninfoParse(dsn.c_str(), &error)) {
    for (const PQconninfoOption* o = parsed; o->keyword != nullptr; ++o) {
      if (std::string_view(o->keyword) == "options" && o->val != nullptr) options = o->val;
    }
    PQconninfoFree(parsed);
  }
  if (error != nullptr) PQfreemem(error);  // a malformed conninfo fails at connect, with why
  if (options.empty()) {
    if (const char* env = std::getenv("PGOPTIONS")) options = env;
  }
  return options;
}

}  // namespace

ConninfoParams BuildConninfoParams(const std::string& dsn, bool replication,
                                   const std::string& fallback_application_name) {
  ConninfoParams params;
  params.keywords = {"dbname", "fallback_application_name"};
  params.values = {dsn, fallback_application_name};
  if (replication) {
    params.keywords.push_back("replication");
    params.values.push_back("database");
    const std::string user_options = UserOptions(dsn);
    params.keywords.push_back("options");
    params.values.push_back(user_options.empty() ? std::string(kWalsenderSessionOptions)
                                                 : user_options + " " + kWalsenderSessionOptions);
  }
  return params;
}

}  // namespace sluice::pg
