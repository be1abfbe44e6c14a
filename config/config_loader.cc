#include "config/config_loader.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <sstream>
#include <utility>
#include <vector>

#include "config/dsn.h"
#include "pg/quote.h"

namespace sluice::config {
namespace {

constexpr size_t kMaxReportedErrors = 20;
constexpr size_t kMaxIdentifierBytes = 63;  // PostgreSQL's NAMEDATALEN - 1

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string Trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

// Splits "123 kB" into 123 and "kb"; nullopt if there is no leading number.
std::optional<std::pair<uint64_t, std::string>> SplitNumberUnit(const std::string& text) {
  const std::string s = Trim(text);
  uint64_t number = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), number);
  if (ec != std::errc() || end == s.data()) return std::nullopt;
  return std::make_pair(number, Lower(Trim(std::string(end, s.data() + s.size()))));
}

size_t EditDistance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::string Join(const std::vector<std::string>& items, const std::string& separator) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += separator;
    out += items[i];
  }
  return out;
}

// Stands for a value that is not shown in a message because it may hold a password.
constexpr char kHiddenValue[] = "<not shown: it may hold a password>";

std::string Describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
      return "nothing";
    case YAML::NodeType::Scalar:
      return MayHoldSecret(node.Scalar()) ? std::string("a string ") + kHiddenValue
                                          : "'" + node.Scalar() + "'";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Undefined:
      break;
  }
  return "nothing";
}

bool IsValidName(const std::string& name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

bool IsValidSlotName(const std::string& name) {
  return !name.empty() && name.size() <= kMaxIdentifierBytes &&
         std::all_of(name.begin(), name.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
         });
}

void ReplaceAll(std::string* text, const std::string& what, const std::string& with) {
  for (size_t pos = 0; (pos = text->find(what, pos)) != std::string::npos; pos += with.size()) {
    text->replace(pos, what.size(), with);
  }
}

// `message` about the value `node` without that value, or any quoted part of it, when the value
// may hold a password (say, a DSN given where a mapping or a name was expected).
std::string WithoutSecretValue(const YAML::Node& node, std::string message) {
  if (!node.IsScalar()) return message;
  std::vector<std::string> spellings = {node.Scalar()};
  if (auto expanded = ExpandEnvironment(node.Scalar()); expanded.ok()) {
    spellings.push_back(*expanded);
  }
  for (const std::string& value : spellings) {
    if (value.empty() || !MayHoldSecret(value)) continue;
    ReplaceAll(&message, value, kHiddenValue);
    // Parts of it quoted on their own, as in "unexpected '...' after the table in '...'".
    for (size_t open = message.find('\''); open != std::string::npos;) {
      const size_t close = message.find('\'', open + 1);
      if (close == std::string::npos) break;
      const std::string quoted = message.substr(open + 1, close - open - 1);
      const bool names_variable = value.find("${" + quoted + "}") != std::string::npos;
      if (quoted.size() >= 2 && !names_variable && value.find(quoted) != std::string::npos) {
        message.replace(open + 1, quoted.size(), kHiddenValue);
        open = message.find('\'', open + 1 + sizeof(kHiddenValue));
      } else {
        open = message.find('\'', close + 1);
      }
    }
  }
  return message;
}

// A value in the document and where to point at it.
struct Field {
  YAML::Node node;
  YAML::Mark mark;
  std::string path;
};

// Collects every error of one document with its position.
class Loader {
 public:
  explicit Loader(std::string source) : source_(std::move(source)) {}

  void Error(const YAML::Mark& mark, const std::string& path, const std::string& message) {
    std::string line = source_ + ":";
    if (!mark.is_null()) {
      line += std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1) + ":";
    }
    line += " ";
    if (!path.empty()) line += path + ": ";
    errors_.push_back({mark.line, mark.column, line + message});
  }
  void Error(const Field& f, const std::string& message) {
    Error(f.mark, f.path, WithoutSecretValue(f.node, message));
  }

  bool ok() const { return errors_.empty(); }
  size_t error_count() const { return errors_.size(); }

  // All errors in document order, one per line.
  core::Status ToStatus() const {
    std::vector<Located> sorted = errors_;
    std::stable_sort(sorted.begin(), sorted.end(), [](const Located& a, const Located& b) {
      return std::pair(a.line, a.column) < std::pair(b.line, b.column);
    });
    std::vector<std::string> shown;
    for (size_t i = 0; i < sorted.size() && i < kMaxReportedErrors; ++i) {
      shown.push_back(sorted[i].text);
    }
    if (errors_.size() > kMaxReportedErrors) {
      shown.push_back("(" + std::to_string(errors_.size() - kMaxReportedErrors) +
                      " more errors not shown)");
    }
    // A password read from a DSN may also have been given (by mistake, or through the same
    // ${VAR}) to a value that a message quotes.
    return core::InvalidArgument(RedactSecrets(Join(shown, "\n"), dsns_));
  }

  // The scalar of `f` with ${VAR} expanded; nullopt (reported) if not a scalar.
  std::optional<std::string> Scalar(const Field& f, const std::string& expected) {
    if (!f.node.IsScalar()) {
      Error(f, "expected " + expected + ", got " + Describe(f.node));
      return std::nullopt;
    }
    auto expanded = ExpandEnvironment(f.node.Scalar());
    if (!expanded.ok()) {
      Error(f, expanded.status().message());
      return std::nullopt;
    }
    return std::move(expanded).value();
  }

  // The scalar of `f` as a libpq connection string, ${VAR} expanded as ExpandDsnEnvironment
  // does (so any password reaches libpq as it is); nullopt (reported) if not a non-empty scalar.
  std::optional<std::string> Dsn(const Field& f) {
    if (!f.node.IsScalar()) {
      Error(f, "expected a string, got " + Describe(f.node));
      return std::nullopt;
    }
    auto expanded = ExpandDsnEnvironment(f.node.Scalar());
    if (!expanded.ok()) {
      Error(f, expanded.status().message());
      return std::nullopt;
    }
    if (expanded->empty()) {
      Error(f, "expected a non-empty string");
      return std::nullopt;
    }
    dsns_.push_back(*expanded);
    return std::move(expanded).value();
  }

  std::optional<std::string> String(const Field& f, bool allow_empty = false) {
    auto s = Scalar(f, "a string");
    if (s && s->empty() && !allow_empty) {
      Error(f, "expected a non-empty string");
      return std::nullopt;
    }
    return s;
  }

  std::optional<bool> Bool(const Field& f) {
    auto s = Scalar(f, "true or false");
    if (!s) return std::nullopt;
    const std::string v = Lower(*s);
    if (v == "true" || v == "yes" || v == "on") return true;
    if (v == "false" || v == "no" || v == "off") return false;
    Error(f, "expected true or false, got '" + *s + "'");
    return std::nullopt;
  }

  std::optional<int64_t> Integer(const Field& f, int64_t min, int64_t max) {
    const std::string expected =
        "an integer from " + std::to_string(min) + " to " + std::to_string(max);
    auto s = Scalar(f, expected);
    if (!s) return std::nullopt;
    const std::string t = Trim(*s);
    int64_t v = 0;
    auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    if (ec != std::errc() || end != t.data() + t.size() || t.empty() || v < min || v > max) {
      Error(f, "expected " + expected + ", got '" + *s + "'");
      return std::nullopt;
    }
    return v;
  }

  std::optional<uint64_t> Size(const Field& f, uint64_t min) {
    auto s = Scalar(f, "a size like 64MB");
    if (!s) return std::nullopt;
    auto size = ParseSize(*s);
    if (!size.ok()) {
      Error(f, size.status().message());
      return std::nullopt;
    }
    if (*size < min) {
      Error(f, "expected a size of at least " + std::to_string(min) + " bytes, got '" + *s + "'");
      return std::nullopt;
    }
    return *size;
  }

  std::optional<std::chrono::milliseconds> Duration(const Field& f, std::chrono::milliseconds min) {
    auto s = Scalar(f, "a duration like 10s or 500ms");
    if (!s) return std::nullopt;
    auto d = ParseDuration(*s);
    if (!d.ok()) {
      Error(f, d.status().message());
      return std::nullopt;
    }
    if (*d < min) {
      Error(f, "expected a duration of at least " + std::to_string(min.count()) + "ms, got '" + *s +
                   "'");
      return std::nullopt;
    }
    return *d;
  }

  std::optional<std::string> OneOf(const Field& f, const std::vector<std::string>& allowed) {
    auto s = Scalar(f, "one of " + Join(allowed, ", "));
    if (!s) return std::nullopt;
    if (std::find(allowed.begin(), allowed.end(), *s) == allowed.end()) {
      Error(f, "expected one of " + Join(allowed, ", ") + "; got '" + *s + "'");
      return std::nullopt;
    }
    return s;
  }

  // Elements of a list (each with its own path); nullopt (reported) if not a list.
  std::optional<std::vector<Field>> List(const Field& f) {
    if (!f.node.IsSequence()) {
      Error(f, "expected a list, got " + Describe(f.node));
      return std::nullopt;
    }
    std::vector<Field> items;
    for (size_t i = 0; i < f.node.size(); ++i) {
      YAML::Node item = f.node[i];
      YAML::Mark mark = item.Mark().is_null() ? f.mark : item.Mark();
      items.push_back({item, mark, f.path + "[" + std::to_string(i) + "]"});
    }
    return items;
  }

  std::optional<std::vector<std::string>> StringList(const Field& f) {
    auto items = List(f);
    if (!items) return std::nullopt;
    std::vector<std::string> out;
    bool all_ok = true;
    for (const Field& item : *items) {
      auto s = String(item);
      if (s) {
        out.push_back(*s);
      } else {
        all_ok = false;
      }
    }
    if (!all_ok) return std::nullopt;
    return out;
  }

 private:
  struct Located {
    int line;
    int column;
    std::string text;
  };

  std::string source_;
  std::vector<Located> errors_;
  std::vector<std::string> dsns_;  // every connection string read, for redacting messages
};

// The keys of one mapping. Each Take() declares a key as known; Finish() reports the keys
// nobody took, suggesting the nearest known key.
class MapReader {
 public:
  MapReader(Loader* loader, const Field& map) : loader_(loader), map_(map) {
    for (auto it = map.node.begin(); it != map.node.end(); ++it) {
      const YAML::Node key = it->first;
      const YAML::Mark key_mark = key.Mark().is_null() ? map.mark : key.Mark();
      if (!key.IsScalar()) {
        loader_->Error(key_mark, map.path, "expected a string key, got " + Describe(key));
        continue;
      }
      const std::string& name = key.Scalar();
      if (entries_.count(name) > 0) {
        loader_->Error(key_mark, ChildPath(name),
                       "duplicate key (first given on line " +
                           std::to_string(entries_[name].key_mark.line + 1) + ")");
        continue;
      }
      const YAML::Node value = it->second;
      // An empty value's mark is wherever the next token is; its key is the better place.
      const bool point_at_key = value.IsNull() || value.Mark().is_null();
      entries_.emplace(name, Entry{value, key_mark, point_at_key ? key_mark : value.Mark()});
      order_.push_back(name);
    }
  }

  std::string ChildPath(const std::string& key) const {
    return map_.path.empty() ? key : map_.path + "." + key;
  }
  const Field& field() const { return map_; }

  // The value of `key`, or nullopt if absent. A key given with no value (`key:`) is present
  // with a null node.
  std::optional<Field> Take(const std::string& key) {
    known_.push_back(key);
    auto it = entries_.find(key);
    if (it == entries_.end()) return std::nullopt;
    return Field{it->second.value, it->second.value_mark, ChildPath(key)};
  }

  // Like Take, but a missing key is reported.
  std::optional<Field> Require(const std::string& key) {
    auto f = Take(key);
    if (!f) loader_->Error(map_.mark, ChildPath(key), "required key is missing");
    return f;
  }

  void Finish() {
    for (const std::string& name : order_) {
      if (std::find(known_.begin(), known_.end(), name) != known_.end()) continue;
      std::string best;
      size_t best_distance = std::numeric_limits<size_t>::max();
      for (const std::string& known : known_) {
        const size_t d = EditDistance(Lower(name), known);
        if (d < best_distance) {
          best_distance = d;
          best = known;
        }
      }
      std::string message = "unknown key '" + name + "'";
      if (best_distance <= std::max<size_t>(1, std::min<size_t>(3, best.size() / 3))) {
        message += " (did you mean '" + best + "'?)";
      } else {
        std::vector<std::string> sorted = known_;
        std::sort(sorted.begin(), sorted.end());
        message += " (expected one of: " + Join(sorted, ", ") + ")";
      }
      loader_->Error(entries_[name].key_mark, map_.path, message);
    }
  }

 private:
  struct Entry {
    YAML::Node value;
    YAML::Mark key_mark;
    YAML::Mark value_mark;
  };

  Loader* loader_;
  Field map_;
  std::map<std::string, Entry> entries_;
  std::vector<std::string> order_;
  std::vector<std::string> known_;
};

// A nested mapping: nullopt when absent or null (defaults apply) or not a mapping (reported).
std::optional<MapReader> SubMap(Loader* loader, const std::optional<Field>& f) {
  if (!f || f->node.IsNull()) return std::nullopt;
  if (!f->node.IsMap()) {
    loader->Error(*f, "expected a mapping, got " + Describe(f->node));
    return std::nullopt;
  }
  return MapReader(loader, *f);
}

// Stores `v` in `out` if there is one; whether there was (a missing one has been reported).
template <typename T, typename V>
bool Assign(T* out, const std::optional<V>& v) {
  if (v) *out = static_cast<T>(*v);
  return v.has_value();
}

void ReadTables(Loader* loader, const Field& f, std::vector<std::string>* out) {
  auto items = loader->List(f);
  if (!items) return;
  out->clear();
  for (const Field& item : *items) {
    auto s = loader->String(item);
    if (!s) continue;
    auto pattern = ParseTablePattern(*s);
    if (!pattern.ok()) {
      loader->Error(item, pattern.status().message());
      continue;
    }
    out->push_back(*s);
  }
}

void ReadDsn(Loader* loader, const Field& f, std::string* out) {
  auto s = loader->Dsn(f);
  if (!s) return;
  core::Status valid = ValidateDsn(*s);
  if (!valid.ok()) {
    loader->Error(f,
                  "expected a libpq connection string (key=value pairs or a postgresql:// "
                  "URI): " +
                      valid.message());
    return;
  }
  *out = *s;
}

void ReadSource(Loader* loader, MapReader& m, const std::string& pipeline_name,
                SourceConfig* source) {
  if (auto f = m.Require("dsn")) ReadDsn(loader, *f, &source->dsn);
  std::optional<Field> slot = m.Take("slot");
  if (slot) {
    if (auto s = loader->String(*slot)) {
      if (IsValidSlotName(*s)) {
        source->slot = *s;
      } else {
        loader->Error(*slot,
                      "expected a replication slot name of lower-case letters, digits and "
                      "underscores, at most 63 characters; got '" +
                          *s + "'");
      }
    }
  } else if (!pipeline_name.empty()) {
    std::string name = "sluice_" + pipeline_name;
    std::replace(name.begin(), name.end(), '-', '_');
    source->slot = name;
    if (name.size() > kMaxIdentifierBytes) {
      loader->Error(m.field().mark, m.ChildPath("slot"),
                    "the default slot name '" + name +
                        "' is longer than 63 characters; set a shorter slot name");
    }
  }
  if (auto f = m.Take("publication")) {
    if (auto s = loader->String(*f)) {
      if (s->size() > kMaxIdentifierBytes) {
        loader->Error(*f, "expected a publication name of at most 63 bytes, got '" + *s + "'");
      } else {
        source->publication = *s;
      }
    }
  } else if (!pipeline_name.empty()) {
    std::string name = "sluice_" + pipeline_name;
    std::replace(name.begin(), name.end(), '-', '_');
    source->publication = name.substr(0, kMaxIdentifierBytes);
  }
  std::optional<Field> tables = m.Take("tables");
  if (tables) ReadTables(loader, *tables, &source->tables);
  if (auto f = m.Take("create_publication")) Assign(&source->create_publication, loader->Bool(*f));
  if (auto f = m.Take("adopt_slot")) Assign(&source->adopt_slot, loader->Bool(*f));
  if (auto f = m.Take("protocol_version")) {
    Assign(&source->protocol_version, loader->Integer(*f, 0, 4));
  }
  if (auto f = m.Take("streaming")) Assign(&source->streaming, loader->Bool(*f));
  if (auto f = m.Take("binary")) Assign(&source->binary, loader->Bool(*f));
  if (auto f = m.Take("skip_origins")) Assign(&source->skip_origins, loader->StringList(*f));
  if (auto f = m.Take("status_interval")) {
    Assign(&source->status_interval, loader->Duration(*f, std::chrono::milliseconds(1)));
  }
  if (auto f = m.Take("connect_timeout")) {
    Assign(&source->connect_timeout, loader->Duration(*f, std::chrono::milliseconds(1)));
  }
  if (auto f = m.Take("receive_timeout")) {
    // Below a second a busy but healthy walsender could be cut off between two keepalives.
    std::optional<std::chrono::milliseconds> d = loader->Duration(*f, std::chrono::milliseconds(0));
    if (d && d->count() != 0 && *d < std::chrono::seconds(1)) {
      loader->Error(*f, "expected 0 (never time out) or a duration of at least 1s, got " +
                            std::to_string(d->count()) + "ms");
    } else {
      Assign(&source->receive_timeout, d);
    }
  }
  const bool tables_empty = !tables || (tables->node.IsSequence() && tables->node.size() == 0);
  if (source->create_publication && tables_empty) {
    loader->Error(tables ? tables->mark : m.field().mark, m.ChildPath("tables"),
                  "expected at least one table ('schema.table' or 'schema.*') because "
                  "create_publication is true");
  }
  m.Finish();
}

void ReadCapture(Loader* loader, MapReader& m, CaptureConfig* capture) {
  if (auto f = m.Take("memory_limit")) {
    Assign(&capture->memory_limit_bytes, loader->Size(*f, 64 * kKiB));
  }
  if (auto f = m.Take("spill_dir")) Assign(&capture->spill_dir, loader->String(*f));
  if (auto f = m.Take("max_fragment_changes")) {
    Assign(&capture->max_fragment_changes,
           loader->Integer(*f, 1, std::numeric_limits<int32_t>::max()));
  }
  if (auto f = m.Take("max_fragment_bytes")) {
    Assign(&capture->max_fragment_bytes, loader->Size(*f, 1));
  }
  if (auto f = m.Take("queue_capacity")) {
    Assign(&capture->queue_capacity, loader->Integer(*f, 1, 1 << 20));
  }
  m.Finish();
}

// One key of target.postgres: how to read it, and whether two readings agree.
struct PostgresKey {
  const char* name;
  // Reads the key's value into `out`; false (reported) when the value is not valid.
  bool (*read)(Loader*, const Field&, PostgresTargetConfig* out);
  bool (*same)(const PostgresTargetConfig&, const PostgresTargetConfig&);
  void (*copy)(const PostgresTargetConfig& from, PostgresTargetConfig* to);
};

template <auto kMember>
PostgresKey MakePostgresKey(const char* name,
                            bool (*read)(Loader*, const Field&, PostgresTargetConfig*)) {
  return {name, read,
          [](const PostgresTargetConfig& a, const PostgresTargetConfig& b) {
            return a.*kMember == b.*kMember;
          },
          [](const PostgresTargetConfig& from, PostgresTargetConfig* to) {
            to->*kMember = from.*kMember;
          }};
}

// The YAML spellings of every value of an enum (`all`), as `name_of` writes them.
std::vector<std::string> Names(const auto& all, auto name_of) {
  std::vector<std::string> names;
  for (auto value : all) names.emplace_back(name_of(value));
  return names;
}

const std::vector<PostgresKey>& PostgresKeys() {
  using P = PostgresTargetConfig;
  static const std::vector<PostgresKey> kKeys = {
      MakePostgresKey<&P::create_tables>("create_tables",
                                         [](Loader* l, const Field& f, P* out) {
                                           return Assign(&out->create_tables, l->Bool(f));
                                         }),
      MakePostgresKey<&P::session_replication_role>(
          "session_replication_role",
          [](Loader* l, const Field& f, P* out) {
            return Assign(&out->session_replication_role,
                          l->OneOf(f, {"replica", "origin", "local"}));
          }),
      MakePostgresKey<&P::compact>(
          "compact",
          [](Loader* l, const Field& f, P* out) { return Assign(&out->compact, l->Bool(f)); }),
      MakePostgresKey<&P::flush_on_pause_bytes>("flush_on_pause",
                                                [](Loader* l, const Field& f, P* out) {
                                                  return Assign(&out->flush_on_pause_bytes,
                                                                l->Size(f, 0));
                                                }),
      MakePostgresKey<&P::schema_changes>("schema_changes",
                                          [](Loader* l, const Field& f, P* out) {
                                            const std::optional<std::string> name = l->OneOf(
                                                f, Names(kSchemaChanges, SchemaChangesName));
                                            if (!name) return false;
                                            out->schema_changes = *ParseSchemaChanges(*name);
                                            return true;
                                          }),
  };
  return kKeys;
}

// target.apply: the target-neutral keys, and (returned in `postgres_keys`, read by
// ReadPostgresTarget) the postgres keys it held before each target type had its own block.
void ReadApply(Loader* loader, MapReader& m, ApplyConfig* apply,
               std::vector<std::pair<const PostgresKey*, Field>>* postgres_keys) {
  if (auto f = m.Take("batch_max_transactions")) {
    Assign(&apply->batch_max_transactions,
           loader->Integer(*f, 1, std::numeric_limits<int32_t>::max()));
  }
  if (auto f = m.Take("batch_max_bytes")) Assign(&apply->batch_max_bytes, loader->Size(*f, 1));
  if (auto f = m.Take("batch_max_delay")) {
    Assign(&apply->batch_max_delay, loader->Duration(*f, std::chrono::milliseconds(0)));
  }
  if (auto f = m.Take("copy_jobs")) Assign(&apply->copy_jobs, loader->Integer(*f, 1, 64));
  for (const PostgresKey& key : PostgresKeys()) {
    if (auto f = m.Take(key.name)) postgres_keys->emplace_back(&key, *f);
  }
  m.Finish();
}

// target.postgres, and the same keys given under target.apply (`apply_keys`): both spellings
// are read for a postgres target; a key given in both must say the same thing in both.
void ReadPostgresTarget(Loader* loader, const std::optional<Field>& block,
                        const std::vector<std::pair<const PostgresKey*, Field>>& apply_keys,
                        TargetConfig* target) {
  const bool postgres = target->type == TargetType::kPostgres;
  const std::string type(TargetTypeName(target->type));
  std::map<std::string, std::optional<Field>> in_block;  // key -> its field, if it read well
  if (block && !postgres) {
    loader->Error(*block, "the options of a postgres target, but this target is of type " + type +
                              " (remove this block)");
  } else if (std::optional<MapReader> m = SubMap(loader, block)) {
    for (const PostgresKey& key : PostgresKeys()) {
      std::optional<Field> f = m->Take(key.name);
      if (!f) continue;
      const bool valid = key.read(loader, *f, &target->postgres);
      in_block.emplace(key.name, valid ? f : std::nullopt);
    }
    m->Finish();
  }
  for (const auto& [key, f] : apply_keys) {
    if (!postgres) {
      loader->Error(
          f, "an option of postgres targets, but this target is of type " + type + " (remove it)");
      continue;
    }
    PostgresTargetConfig value;
    if (!key->read(loader, f, &value)) continue;
    auto given = in_block.find(key->name);
    if (given == in_block.end()) {
      key->copy(value, &target->postgres);
    } else if (given->second && !key->same(value, target->postgres)) {
      loader->Error(f, "differs from " + given->second->path + " (line " +
                           std::to_string(given->second->mark.line + 1) +
                           "); give it once, under target.postgres");
    }
  }
}

void ReadTarget(Loader* loader, const std::optional<Field>& f, TargetConfig* target) {
  std::optional<MapReader> m = SubMap(loader, f);
  if (!m) {
    // No target: a capture-only pipeline (sluice tail).
    if (!f || f->node.IsNull()) target->type = TargetType::kNone;
    return;
  }
  if (auto t = m->Take("type")) {
    if (auto name = loader->OneOf(*t, Names(kTargetTypes, TargetTypeName))) {
      target->type = *ParseTargetType(*name);
    }
  }
  std::optional<Field> dsn = m->Take("dsn");
  if (target->type == TargetType::kNone) {
    if (dsn) loader->Error(*dsn, "a target of type none takes no dsn");
  } else if (!dsn) {
    loader->Error(m->field().mark, m->ChildPath("dsn"),
                  "required key is missing (the target is of type " +
                      std::string(TargetTypeName(target->type)) + ")");
  } else if (target->type == TargetType::kPostgres) {
    ReadDsn(loader, *dsn, &target->dsn);
  } else {
    Assign(&target->dsn, loader->String(*dsn));
  }
  std::vector<std::pair<const PostgresKey*, Field>> postgres_keys_in_apply;
  if (std::optional<MapReader> apply = SubMap(loader, m->Take("apply"))) {
    ReadApply(loader, *apply, &target->apply, &postgres_keys_in_apply);
  }
  std::optional<Field> postgres = m->Take("postgres");
  if (postgres && postgres->node.IsNull()) postgres.reset();  // `postgres:` alone: defaults
  ReadPostgresTarget(loader, postgres, postgres_keys_in_apply, target);
  m->Finish();
}

// The required `name` of a pipeline or migration: it names slots, publications and origins.
void ReadName(Loader* loader, MapReader& m, std::string* name) {
  std::optional<Field> f = m.Require("name");
  if (!f) return;
  std::optional<std::string> s = loader->String(*f);
  if (!s) return;
  if (IsValidName(*s) && s->size() <= kMaxIdentifierBytes) {
    *name = *s;
    return;
  }
  loader->Error(*f,
                "expected a name of lower-case letters, digits, '_' and '-' (at most 63 "
                "characters), got '" +
                    *s + "'");
}

void ReadPipeline(Loader* loader, const Field& item, const std::string& state_dir,
                  PipelineConfig* p) {
  std::optional<MapReader> m = SubMap(loader, item);
  if (!m) {
    if (item.node.IsNull()) loader->Error(item, "expected a mapping, got nothing");
    return;
  }
  ReadName(loader, *m, &p->name);
  std::optional<Field> source = m->Require("source");
  if (source) {
    if (std::optional<MapReader> sm = SubMap(loader, source)) {
      ReadSource(loader, *sm, p->name, &p->source);
    } else if (source->node.IsNull()) {
      loader->Error(*source, "expected a mapping with at least a dsn, got nothing");
    }
  }
  ReadTarget(loader, m->Take("target"), &p->target);
  std::optional<Field> snapshot = m->Take("snapshot");
  if (snapshot) Assign(&p->snapshot, loader->OneOf(*snapshot, {"initial", "never"}));
  if (p->source.adopt_slot && p->snapshot != "never") {
    // A copy needs the slot's own exported snapshot, which only a slot made now has.
    loader->Error(snapshot ? snapshot->mark : m->field().mark, m->ChildPath("snapshot"),
                  "expected snapshot: never because source.adopt_slot is true (an initial copy "
                  "needs a slot sluice makes itself)");
  }
  if (std::optional<MapReader> cm = SubMap(loader, m->Take("capture"))) {
    ReadCapture(loader, *cm, &p->capture);
  }
  if (p->capture.spill_dir.empty() && !p->name.empty()) {
    std::string dir = state_dir;
    while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
    p->capture.spill_dir = dir + "/spill/" + p->name;
  }
  m->Finish();
}

void ReadMigration(Loader* loader, const Field& item, MigrationConfig* mig) {
  std::optional<MapReader> m = SubMap(loader, item);
  if (!m) {
    if (item.node.IsNull()) loader->Error(item, "expected a mapping, got nothing");
    return;
  }
  ReadName(loader, *m, &mig->name);
  for (auto [key, out] : {std::pair{"old", &mig->old_dsn}, std::pair{"new", &mig->new_dsn}}) {
    std::optional<Field> f = m->Require(key);
    if (!f) continue;
    if (std::optional<MapReader> side = SubMap(loader, f)) {
      if (auto dsn = side->Require("dsn")) ReadDsn(loader, *dsn, out);
      side->Finish();
    } else if (f->node.IsNull()) {
      loader->Error(*f, "expected a mapping with a dsn, got nothing");
    }
  }
  if (auto f = m->Require("tables")) {
    ReadTables(loader, *f, &mig->tables);
    if (mig->tables.empty() && f->node.IsSequence() && f->node.size() == 0) {
      loader->Error(*f, "expected at least one table ('schema.table' or 'schema.*')");
    }
  }
  m->Finish();
}

// Checks across pipelines: unique names, no two pipelines on one slot of one source.
void CheckPipelines(Loader* loader, const std::vector<Field>& items,
                    const std::vector<PipelineConfig>& pipelines) {
  std::map<std::string, size_t> by_name;
  std::map<std::pair<std::string, std::string>, size_t> by_slot;
  for (size_t i = 0; i < pipelines.size(); ++i) {
    const PipelineConfig& p = pipelines[i];
    if (p.name.empty()) continue;
    auto [it, inserted] = by_name.emplace(p.name, i);
    if (!inserted) {
      loader->Error(items[i].node["name"].Mark(), items[i].path + ".name",
                    "duplicate pipeline name '" + p.name + "' (also pipelines[" +
                        std::to_string(it->second) + "])");
    }
    if (p.source.dsn.empty() || p.source.slot.empty()) continue;
    auto [slot_it, slot_inserted] = by_slot.emplace(std::pair{p.source.dsn, p.source.slot}, i);
    if (!slot_inserted) {
      const YAML::Node slot = items[i].node["source"]["slot"];
      loader->Error(slot.IsDefined() ? slot.Mark() : items[i].mark, items[i].path + ".source.slot",
                    "slot '" + p.source.slot + "' on the same source is also used by pipelines[" +
                        std::to_string(slot_it->second) + "]");
    }
  }
}

void CheckMigrations(Loader* loader, const std::vector<Field>& items,
                     const std::vector<MigrationConfig>& migrations) {
  std::map<std::string, size_t> by_name;
  for (size_t i = 0; i < migrations.size(); ++i) {
    if (migrations[i].name.empty()) continue;
    auto [it, inserted] = by_name.emplace(migrations[i].name, i);
    if (!inserted) {
      loader->Error(items[i].node["name"].Mark(), items[i].path + ".name",
                    "duplicate migration name '" + migrations[i].name + "' (also migrations[" +
                        std::to_string(it->second) + "])");
    }
  }
}

void ReadConfig(Loader* loader, const Field& root, Config* config) {
  MapReader m(loader, root);
  if (auto f = m.Take("state_dir")) Assign(&config->state_dir, loader->String(*f));
  if (auto f = m.Take("nice")) Assign(&config->nice, loader->Integer(*f, -20, 19));
  if (std::optional<MapReader> admin = SubMap(loader, m.Take("admin"))) {
    if (auto f = admin->Take("listen")) {
      if (auto s = loader->String(*f)) {
        const size_t colon = s->rfind(':');
        int port = 0;
        const char* port_begin = s->data() + (colon == std::string::npos ? 0 : colon + 1);
        const char* port_end = s->data() + s->size();
        auto [end, ec] = std::from_chars(port_begin, port_end, port);
        if (colon == std::string::npos || colon == 0 || ec != std::errc() || end != port_end ||
            port < 0 || port > 65535) {
          loader->Error(*f, "expected host:port like 127.0.0.1:7878, got '" + *s + "'");
        } else {
          config->admin.listen = *s;
        }
      }
    }
    if (auto f = admin->Take("retained_wal_warning")) {
      Assign(&config->admin.retained_wal_warning_bytes, loader->Size(*f, 1));
    }
    admin->Finish();
  }
  if (std::optional<MapReader> log = SubMap(loader, m.Take("log"))) {
    if (auto f = log->Take("level")) {
      Assign(&config->log.level,
             loader->OneOf(*f, {"trace", "debug", "info", "warn", "error", "critical", "off"}));
    }
    if (auto f = log->Take("format"))
      Assign(&config->log.format, loader->OneOf(*f, {"text", "json"}));
    log->Finish();
  }

  std::optional<Field> pipelines = m.Take("pipelines");
  if (pipelines && !pipelines->node.IsNull()) {
    if (auto items = loader->List(*pipelines)) {
      config->pipelines.resize(items->size());
      for (size_t i = 0; i < items->size(); ++i) {
        ReadPipeline(loader, (*items)[i], config->state_dir, &config->pipelines[i]);
      }
      CheckPipelines(loader, *items, config->pipelines);
    }
  }
  std::optional<Field> migrations = m.Take("migrations");
  if (migrations && !migrations->node.IsNull()) {
    if (auto items = loader->List(*migrations)) {
      config->migrations.resize(items->size());
      for (size_t i = 0; i < items->size(); ++i) {
        ReadMigration(loader, (*items)[i], &config->migrations[i]);
      }
      CheckMigrations(loader, *items, config->migrations);
    }
  }
  m.Finish();
  // A list of the wrong type was reported above; only say "none" when there are none.
  auto empty = [](const std::optional<Field>& f) {
    return !f || f->node.IsNull() || (f->node.IsSequence() && f->node.size() == 0);
  };
  if (empty(pipelines) && empty(migrations)) {
    const Field& at = pipelines ? *pipelines : (migrations ? *migrations : root);
    loader->Error(at.mark, at.path, "expected at least one pipeline or migration");
  }
}

}  // namespace

core::Result<uint64_t> ParseSize(const std::string& text) {
  auto bad = [&] { return core::InvalidArgument("expected a size like 64MB, got '" + text + "'"); };
  auto split = SplitNumberUnit(text);
  if (!split) return bad();
  const auto& [number, unit] = *split;
  static const std::vector<std::pair<std::vector<std::string>, int>> kUnits = {
      {{"", "b"}, 0},           {{"k", "kb", "kib"}, 10}, {{"m", "mb", "mib"}, 20},
      {{"g", "gb", "gib"}, 30}, {{"t", "tb", "tib"}, 40},
  };
  for (const auto& [spellings, shift] : kUnits) {
    if (std::find(spellings.begin(), spellings.end(), unit) == spellings.end()) continue;
    if (shift > 0 && number > (std::numeric_limits<uint64_t>::max() >> shift)) {
      return core::InvalidArgument("size '" + text + "' is too large");
    }
    return number << shift;
  }
  return bad();
}

core::Result<std::chrono::milliseconds> ParseDuration(const std::string& text) {
  auto bad = [&] {
    return core::InvalidArgument("expected a duration like 10s or 500ms, got '" + text + "'");
  };
  auto split = SplitNumberUnit(text);
  if (!split) return bad();
  const auto& [number, unit] = *split;
  uint64_t factor = 0;
  if (unit == "ms" || (unit.empty() && number == 0)) {  // a bare 0 needs no unit
    factor = 1;
  } else if (unit == "s") {
    factor = 1000;
  } else if (unit == "m" || unit == "min") {
    factor = uint64_t{60} * 1000;
  } else if (unit == "h") {
    factor = uint64_t{3600} * 1000;
  } else {
    return bad();
  }
  // A year is plenty for any interval or timeout; it also keeps the multiplication in range.
  constexpr uint64_t kMaxMs = uint64_t{366} * 24 * 3600 * 1000;
  if (number > kMaxMs / factor) return core::InvalidArgument("duration '" + text + "' is too long");
  return std::chrono::milliseconds(static_cast<int64_t>(number * factor));
}

core::Result<Config> ParseConfig(const std::string& yaml_text, const std::string& source_name) {
  Loader loader(source_name);
  std::vector<YAML::Node> documents;
  try {
    documents = YAML::LoadAll(yaml_text);
  } catch (const YAML::Exception& e) {
    loader.Error(e.mark, "", "YAML syntax error: " + e.msg);
    return loader.ToStatus();
  }
  const YAML::Mark start = YAML::Mark();  // line 0, column 0
  if (documents.size() > 1) {
    loader.Error(documents[1].Mark().is_null() ? start : documents[1].Mark(), "",
                 "expected a single YAML document, found " + std::to_string(documents.size()));
    return loader.ToStatus();
  }
  if (documents.empty() || documents[0].IsNull()) {
    loader.Error(start, "",
                 "the configuration is empty; expected at least one pipeline or "
                 "migration");
    return loader.ToStatus();
  }
  const YAML::Node& root = documents[0];
  if (!root.IsMap()) {
    loader.Error(root.Mark().is_null() ? start : root.Mark(), "",
                 "expected a mapping of settings (state_dir, pipelines, ...) at the top, got " +
                     Describe(root));
    return loader.ToStatus();
  }
  Config config;
  config.source_file = source_name;
  try {
    ReadConfig(&loader, Field{root, root.Mark(), ""}, &config);
  } catch (const YAML::Exception& e) {
    // yaml-cpp accessors only throw on misuse; report it rather than crash.
    loader.Error(e.mark, "", std::string("internal error reading the configuration: ") + e.msg);
  }
  if (!loader.ok()) return loader.ToStatus();
  return config;
}

core::Result<Config> LoadConfigFile(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return core::InvalidArgument("cannot read configuration file " + path + ": it is a directory");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return core::InvalidArgument("cannot read configuration file " + path + ": " +
                                 std::strerror(errno));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    return core::InvalidArgument("cannot read configuration file " + path + ": " +
                                 std::strerror(errno));
  }
  return ParseConfig(text.str(), path);
}

}  // namespace sluice::config
