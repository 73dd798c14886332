// Row images of ROWS events.
//
// One row image (MySQL sql/rpl_record.cc pack_row / unpack_row, MariaDB the same):
//   [value_options, partial_bits]  PARTIAL_UPDATE_ROWS after images only: a packed integer
//                                  (bit 0 = PARTIAL_JSON_UPDATES) and, when that bit is set,
//                                  one bit per JSON column of the table (present or not)
//   null_bits                      ceil(present / 8) bytes, one bit per column in the image
//   values                         the non-NULL columns of the image, in table order
// The column bitmap of the event says which columns are in the image (binlog_row_image=MINIMAL
// and NOBLOB leave columns out). Value layouts follow each Field's pack() in MySQL sql/field.cc
// and log_event_print_value in sql/log_event.cc. Pre-GA (v0) images differ; see
// DecodePreGaImage.
#include "capture/binlog/row_decoder.h"

#include <zlib.h>

#include <bit>
#include <cstring>

#include "capture/binlog/mysql_packed.h"

namespace replsync::capture {
namespace {

// MariaDB column types for compressed columns (MariaDB enum_field_types; not in MySQL).
constexpr uint8_t kMariadbVarcharCompressed = 140;
constexpr uint8_t kMariadbBlobCompressed = 141;

constexpr uint64_t kPartialJsonUpdates = 1;

uint64_t Le(std::string_view b, size_t n) {
  uint64_t v = 0;
  for (size_t i = n; i-- > 0;) v = v << 8 | static_cast<uint8_t>(b[i]);
  return v;
}

uint64_t Be(std::string_view b, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v = v << 8 | static_cast<uint8_t>(b[i]);
  return v;
}

// Sign-extends the low `bits` bits of v.
int64_t SignExtend(uint64_t v, int bits) {
  const uint64_t m = uint64_t{1} << (bits - 1);
  v &= (bits == 64) ? ~uint64_t{0} : ((uint64_t{1} << bits) - 1);
  return static_cast<int64_t>((v ^ m) - m);
}

bool Bit(std::string_view bits, size_t i) {
  return (static_cast<uint8_t>(bits[i >> 3]) >> (i & 7)) & 1;
}

// Bytes of the fractional-second part of TIME2/DATETIME2/TIMESTAMP2 with `fsp` digits.
size_t FractionBytes(unsigned fsp) { return (fsp + 1) / 2; }

bool IsTextType(const ColumnDef& c) { return c.is_text(); }

}  // namespace

RowDecoder::RowDecoder() = default;

void RowDecoder::Reset(const RowsEvent& event) {
  event_ = &event;
  rest_ = event.rows;
  row_index_ = 0;
  json_columns_ = 0;
  if (event.table != nullptr) {
    for (const ColumnDef& c : event.table->columns) {
      if (c.type == ColumnType::kJson) ++json_columns_;
    }
  }
}

Result<bool> RowDecoder::Next(RowImage* before, RowImage* after) {
  if (event_ == nullptr || event_->table == nullptr) {
    return Status::Internal("RowDecoder::Next called without a ROWS event and its table");
  }
  if (rest_.empty()) return false;
  scratch_used_ = 0;
  const TableMap& table = *event_->table;
  if (event_->column_count != table.columns.size()) {
    rest_ = {};
    return Status::Corruption("rows event for `" + table.db + "`.`" + table.table + "` has " +
                              std::to_string(event_->column_count) + " columns, its table map " +
                              std::to_string(table.columns.size()));
  }
  const size_t rest_before = rest_.size();
  Status s;
  switch (event_->kind) {
    case RowsKind::kWrite:
      s = DecodeImage(
          event_->columns_before.empty() ? event_->columns_after : event_->columns_before, false,
          after != nullptr ? after : &discard_);
      break;
    case RowsKind::kDelete:
      s = DecodeImage(event_->columns_before, false, before != nullptr ? before : &discard_);
      break;
    case RowsKind::kUpdate:
      s = DecodeImage(event_->columns_before, false, before != nullptr ? before : &discard_);
      if (s.ok()) {
        s = DecodeImage(
            event_->columns_after.empty() ? event_->columns_before : event_->columns_after, true,
            after != nullptr ? after : &discard_);
      }
      break;
  }
  if (s.ok() && rest_.size() == rest_before) {
    // A row of no bytes would be returned again and again.
    s = ImageError(table.columns.size(),
                   Status::Corruption("empty row image with bytes left in the event"));
  }
  if (!s.ok()) {
    rest_ = {};  // nothing after a bad image can be trusted
    return s;
  }
  ++row_index_;
  return true;
}

Status RowDecoder::ImageError(size_t column, const Status& cause) const {
  const TableMap& table = *event_->table;
  std::string where =
      "decode row " + std::to_string(row_index_) + " of `" + table.db + "`.`" + table.table + "`";
  if (column < table.columns.size()) {
    const ColumnDef& c = table.columns[column];
    where += ", column " + std::to_string(column);
    if (!c.name.empty()) where += " `" + c.name + "`";
    where += std::string(" (") + ColumnTypeName(c.type) + ")";
  }
  return cause.WithContext(where);
}

Status RowDecoder::DecodeImage(std::string_view bitmap, bool after_image, RowImage* image) {
  const std::vector<ColumnDef>& columns = event_->table->columns;
  const size_t n = columns.size();
  const size_t no_column = n;
  if (bitmap.size() < (n + 7) / 8) {
    return ImageError(
        no_column, Status::Corruption("column bitmap of " + std::to_string(bitmap.size()) +
                                      " bytes is too short for " + std::to_string(n) + " columns"));
  }
  if (event_->version == 0) return DecodePreGaImage(bitmap, image);
  image->values.resize(n);
  image->present.resize(n);
  size_t present_count = 0;
  for (size_t i = 0; i < n; ++i) present_count += Bit(bitmap, i);

  std::string_view partial_bits;
  if (after_image && event_->partial_json) {
    // value_options: a packed integer (net_field_length).
    std::string_view first;
    if (!Take(1, &first)) {
      return ImageError(no_column, Status::Corruption("value_options overrun the event"));
    }
    const auto b0 = static_cast<uint8_t>(first[0]);
    uint64_t value_options = b0;
    size_t extra = b0 < 251 ? 0 : b0 == 252 ? 2 : b0 == 253 ? 3 : b0 == 254 ? 8 : SIZE_MAX;
    if (extra == SIZE_MAX) {
      return ImageError(no_column, Status::Corruption("bad value_options length prefix"));
    }
    if (extra > 0) {
      std::string_view more;
      if (!Take(extra, &more)) {
        return ImageError(no_column, Status::Corruption("value_options overrun the event"));
      }
      value_options = Le(more, extra);
    }
    if (value_options > kPartialJsonUpdates) {
      return ImageError(
          no_column, Status::Corruption("unknown value_options " + std::to_string(value_options)));
    }
    if ((value_options & kPartialJsonUpdates) != 0 &&
        !Take((json_columns_ + 7) / 8, &partial_bits)) {
      return ImageError(no_column, Status::Corruption("partial JSON bitmap overruns the event"));
    }
  }

  std::string_view nulls;
  if (!Take((present_count + 7) / 8, &nulls)) {
    return ImageError(no_column, Status::Corruption("NULL bitmap overruns the event"));
  }
  size_t image_pos = 0;
  size_t json_pos = 0;
  for (size_t i = 0; i < n; ++i) {
    const ColumnDef& column = columns[i];
    bool partial = false;
    if (column.type == ColumnType::kJson) {
      if (!partial_bits.empty()) partial = Bit(partial_bits, json_pos);
      ++json_pos;
    }
    Value& v = image->values[i];
    if (!Bit(bitmap, i)) {
      image->present[i] = false;
      v.kind = ValueKind::kNull;
      v.decimals = 0;
      v.bytes = {};
      continue;
    }
    image->present[i] = true;
    if (Bit(nulls, image_pos++)) {
      v.kind = ValueKind::kNull;
      v.decimals = 0;
      v.bytes = {};
      continue;
    }
    Status s = DecodeValue(column, partial, &v);
    if (!s.ok()) return ImageError(i, s);
  }
  return Status::Ok();
}

Status RowDecoder::DecodePreGaImage(std::string_view bitmap, RowImage* image) {
  // MySQL 5.1 before GA (rows events 20-22; read by log_event_old.cc unpack_row_old) logged the
  // record's own NULL bytes (table->s->null_bytes) and then packed every column of the image,
  // including NULL ones. The record reserves bit 0 of the NULL bytes unless its rows are packed
  // (a VARCHAR or BLOB column makes them so); then each nullable column has one bit, in table
  // order. Those table maps carry no metadata, so a table map without a NULL bitmap counts every
  // column as nullable, and ROW_FORMAT=DYNAMIC on a fixed-width table cannot be seen.
  const std::vector<ColumnDef>& columns = event_->table->columns;
  const size_t n = columns.size();
  bool packed_rows = false;
  for (const ColumnDef& c : columns) {
    switch (c.type) {
      case ColumnType::kVarchar:
      case ColumnType::kTinyBlob:
      case ColumnType::kMediumBlob:
      case ColumnType::kLongBlob:
      case ColumnType::kBlob:
      case ColumnType::kGeometry:
        packed_rows = true;
        break;
      case ColumnType::kBit:
        // Uneven BIT bits also live among the NULL bits; not worth guessing for 5.1 alphas.
        return ImageError(n, Status::Unsupported("BIT column in a pre-GA rows event"));
      default:
        break;
    }
  }
  size_t null_bit = packed_rows ? 0 : 1;
  for (const ColumnDef& c : columns) null_bit += c.nullable ? 1 : 0;
  std::string_view nulls;
  if (!Take((null_bit + 7) / 8, &nulls)) {
    return ImageError(n, Status::Corruption("NULL bytes overrun the event"));
  }
  image->values.resize(n);
  image->present.resize(n);
  null_bit = packed_rows ? 0 : 1;
  for (size_t i = 0; i < n; ++i) {
    const ColumnDef& column = columns[i];
    const bool is_null = column.nullable && Bit(nulls, null_bit);
    if (column.nullable) ++null_bit;
    Value& v = image->values[i];
    image->present[i] = Bit(bitmap, i);
    if (!image->present[i]) {
      v.kind = ValueKind::kNull;
      v.decimals = 0;
      v.bytes = {};
      continue;
    }
    Status s = DecodeValue(column, false, &v);
    if (!s.ok()) return ImageError(i, s);
    if (is_null) {
      v.kind = ValueKind::kNull;
      v.decimals = 0;
      v.bytes = {};
    }
  }
  return Status::Ok();
}

bool RowDecoder::Take(size_t n, std::string_view* out) {
  if (n > rest_.size()) return false;
  *out = rest_.substr(0, n);
  rest_.remove_prefix(n);
  return true;
}

Status RowDecoder::TakeLength(size_t prefix_bytes, std::string_view* out) {
  if (prefix_bytes < 1 || prefix_bytes > 4) {
    return Status::Corruption("impossible length prefix of " + std::to_string(prefix_bytes) +
                              " bytes");
  }
  std::string_view prefix;
  if (!Take(prefix_bytes, &prefix)) {
    return Status::Corruption("length prefix overruns the event");
  }
  const uint64_t length = Le(prefix, prefix_bytes);
  if (length > rest_.size()) {
    return Status::Corruption("length " + std::to_string(length) + " exceeds the " +
                              std::to_string(rest_.size()) + " bytes left");
  }
  Take(static_cast<size_t>(length), out);
  return Status::Ok();
}

Status RowDecoder::Inflate(std::string_view stored, uint64_t max_length, std::string_view* out) {
  // MariaDB compressed columns (sql/field_comp.cc): empty, or a header byte then the data. The
  // header's high nibble is the method: 0 stored as is, 8 zlib (low 3 bits: bytes of the
  // big-endian original length that follows; bit 3: raw deflate without the zlib wrapper).
  if (stored.empty()) {
    *out = stored;
    return Status::Ok();
  }
  const auto header = static_cast<uint8_t>(stored[0]);
  const unsigned method = header >> 4;
  if (method == 0) {
    *out = stored.substr(1);
    return Status::Ok();
  }
  if (method != 8) {
    return Status::Unsupported("compressed column with method " + std::to_string(method));
  }
  const size_t length_bytes = header & 0x07;
  if (stored.size() < 1 + length_bytes) return Status::Corruption("truncated compressed value");
  const uint64_t original = Be(stored.substr(1), length_bytes);
  if (original > max_length) {
    return Status::Corruption("compressed value claims " + std::to_string(original) +
                              " bytes, more than the column holds");
  }
  std::string* buf = NextScratch();
  buf->resize(static_cast<size_t>(original));
  z_stream zs{};
  const int wbits = (header & 0x08) != 0 ? -MAX_WBITS : MAX_WBITS;
  if (inflateInit2(&zs, wbits) != Z_OK) return Status::Internal("inflateInit2 failed");
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(stored.data() + 1 + length_bytes));
  zs.avail_in = static_cast<uInt>(stored.size() - 1 - length_bytes);
  zs.next_out = reinterpret_cast<Bytef*>(buf->data());
  zs.avail_out = static_cast<uInt>(buf->size());
  const int rc = inflate(&zs, Z_FINISH);
  const uLong produced = zs.total_out;
  inflateEnd(&zs);
  if (rc != Z_STREAM_END) return Status::Corruption("compressed value does not inflate");
  buf->resize(produced);
  *out = *buf;
  return Status::Ok();
}

std::string* RowDecoder::NextScratch() {
  if (scratch_used_ == scratch_.size()) {
    scratch_.emplace_back();
    scratch_.back().reserve(80);  // a DECIMAL(65,30) fits; deque growth never moves strings
  }
  std::string* s = &scratch_[scratch_used_++];
  s->clear();
  return s;
}

Status RowDecoder::DecodeValue(const ColumnDef& column, bool partial_json, Value* v) {
  v->decimals = 0;
  v->bytes = {};
  std::string_view b;
  auto need = [&](size_t n) -> Status {
    if (Take(n, &b)) return Status::Ok();
    return Status::Corruption("needs " + std::to_string(n) + " bytes, " +
                              std::to_string(rest_.size()) + " left");
  };
  auto integer = [&](size_t n) -> Status {
    RS_RETURN_IF_ERROR(need(n));
    const uint64_t raw = Le(b, n);
    if (column.is_unsigned) {
      v->kind = ValueKind::kUInt;
      v->u = raw;
    } else {
      v->kind = ValueKind::kInt;
      v->i = SignExtend(raw, static_cast<int>(n * 8));
    }
    return Status::Ok();
  };
  auto fsp = [&]() -> Result<unsigned> {
    if (column.meta > 6) {
      return Status::Corruption("fractional-second precision " + std::to_string(column.meta));
    }
    return static_cast<unsigned>(column.meta);
  };
  auto text_or_binary = [&](std::string_view bytes) {
    v->kind = IsTextType(column) ? ValueKind::kString : ValueKind::kBinary;
    v->bytes = bytes;
  };
  // CHAR/VARCHAR: 1 length byte up to 255 bytes of maximum length, 2 above.
  auto string_prefix = [&]() -> size_t { return column.meta > 255 ? 2 : 1; };

  switch (static_cast<uint8_t>(column.type)) {
    case static_cast<uint8_t>(ColumnType::kTiny):
      return integer(1);
    case static_cast<uint8_t>(ColumnType::kShort):
      return integer(2);
    case static_cast<uint8_t>(ColumnType::kInt24):
      return integer(3);
    case static_cast<uint8_t>(ColumnType::kLong):
      return integer(4);
    case static_cast<uint8_t>(ColumnType::kLongLong):
      return integer(8);

    case static_cast<uint8_t>(ColumnType::kFloat): {
      RS_RETURN_IF_ERROR(need(4));
      v->kind = ValueKind::kFloat;
      v->f = std::bit_cast<float>(static_cast<uint32_t>(Le(b, 4)));
      return Status::Ok();
    }
    case static_cast<uint8_t>(ColumnType::kDouble): {
      RS_RETURN_IF_ERROR(need(8));
      v->kind = ValueKind::kDouble;
      v->d = std::bit_cast<double>(Le(b, 8));
      return Status::Ok();
    }

    case static_cast<uint8_t>(ColumnType::kNewDecimal): {
      const int precision = column.meta >> 8;
      const int scale = column.meta & 0xff;
      const size_t size = internal::DecimalBinarySize(precision, scale);
      if (size == 0) {
        return Status::Corruption("impossible DECIMAL(" + std::to_string(precision) + "," +
                                  std::to_string(scale) + ")");
      }
      RS_RETURN_IF_ERROR(need(size));
      std::string* text = NextScratch();
      RS_RETURN_IF_ERROR(internal::AppendDecimalText(b, precision, scale, text));
      v->kind = ValueKind::kDecimal;
      v->bytes = *text;
      return Status::Ok();
    }
    case static_cast<uint8_t>(ColumnType::kDecimal): {
      // Pre-5.0 DECIMAL: the number as space-padded text of the column's full width. The table
      // map carries no width for it, so it can only be decoded when one was supplied.
      if (column.meta == 0) {
        return Status::Unsupported("pre-5.0 DECIMAL column without a known width");
      }
      RS_RETURN_IF_ERROR(need(column.meta));
      std::string_view text = b;
      while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
      v->kind = ValueKind::kDecimal;
      v->bytes = text;
      return Status::Ok();
    }

    case static_cast<uint8_t>(ColumnType::kYear): {
      RS_RETURN_IF_ERROR(need(1));
      const auto y = static_cast<uint8_t>(b[0]);
      v->kind = ValueKind::kYear;
      v->i = y == 0 ? 0 : 1900 + y;
      return Status::Ok();
    }
    case static_cast<uint8_t>(ColumnType::kDate):
    case static_cast<uint8_t>(ColumnType::kNewDate): {
      // 3 bytes little-endian: day (5 bits), month (4 bits), year (15 bits).
      RS_RETURN_IF_ERROR(need(3));
      const uint64_t raw = Le(b, 3);
      DateTimeValue dt{};
      dt.day = static_cast<uint8_t>(raw & 31);
      dt.month = static_cast<uint8_t>((raw >> 5) & 15);
      dt.year = static_cast<uint16_t>(raw >> 9);
      if (dt.month > 12 || dt.year > 9999) return Status::Corruption("impossible DATE");
      v->kind = ValueKind::kDate;
      v->dt = dt;
      return Status::Ok();
    }
    case static_cast<uint8_t>(ColumnType::kTime): {
      // 3 bytes little-endian signed: [-]HHMMSS as a decimal number.
      RS_RETURN_IF_ERROR(need(3));
      const int64_t raw = SignExtend(Le(b, 3), 24);
      const uint64_t mag = static_cast<uint64_t>(raw < 0 ? -raw : raw);
      TimeValue t{};
      t.negative = raw < 0;
      t.hours = static_cast<uint32_t>(mag / 10000);
      t.minute = static_cast<uint8_t>(mag / 100 % 100);
      t.second = static_cast<uint8_t>(mag % 100);
      if (t.minute > 59 || t.second > 59) return Status::Corruption("impossible TIME");
      v->kind = ValueKind::kTime;
      v->tm = t;
      return Status::Ok();
    }
    case static_cast<uint8_t>(ColumnType::kTime2): {
      // 3 bytes big-endian (hours << 12 | minute << 6 | second, offset by 0x800000) and the
      // fraction; decoded like MySQL's my_time_packed_from_binary, which stores the fraction of
      // a negative time as its complement to the next whole second.
      RS_ASSIGN_OR_RETURN(const unsigned digits, fsp());
      const size_t frac_bytes = FractionBytes(digits);
      RS_RETURN_IF_ERROR(need(3 + frac_bytes));
      int64_t packed;
      if (frac_bytes == 3) {
        packed = static_cast<int64_t>(Be(b, 6)) - 0x800000000000LL;
      } else {
        int64_t intpart = static_cast<int64_t>(Be(b, 3)) - 0x800000;
        int64_t frac = 0;
        if (frac_bytes == 1) {
          frac = static_cast<uint8_t>(b[3]);
          if (intpart < 0 && frac != 0) {
            ++intpart;
            frac -= 0x100;
          }
          frac *= 10000;
        } else if (frac_bytes == 2) {
          frac = static_cast<int64_t>(Be(b.substr(3), 2));
          if (intpart < 0 && frac != 0) {
            ++intpart;
            frac -= 0x10000;
          }
          frac *= 100;
        }
        packed = intpart * (int64_t{1} << 24) + frac;
      }
      const TimeValue t = internal::TimeFromPacked(packed);
      if (t.minute > 59 || t.second > 59 || t.micro > 999999) {
        return Status::Corruption("impossible TIME");
      }
      v->kind = ValueKind::kTime;
      v->tm = t;
      v->decimals = static_cast<uint8_t>(digits);
      return Status::Ok();
    }
    case static_cast<uint8_t>(ColumnType::kDateTime): {
      // 8 bytes little-endian: YYYYMMDDhhmmss as a decimal number.
      RS_RETURN_IF_ERROR(need(8));
      const uint64_t raw = Le(b, 8);
      if (raw > 99999999999999ULL) return Status::Corruption("impossible DATETIME");
      const uint64_t date = raw / 1000000;
      const uint64_t time = raw % 1000000;
      DateTimeValue dt{};
      dt.year = static_cast<uint16_t>(date / 10000);
      dt.month = static_cast<uint8_t>(date / 100 % 100);
      dt.day = static_cast<uint8_t>(date % 100);
      dt.hour = static_cast<uint8_t>(time / 10000);
      dt.minute = static_cast<uint8_t>(time / 100 % 100);
      dt.second = static_cast<uint8_t>(time % 100);
      if (dt.month > 12 || dt.day > 31 || dt.hour > 23 || dt.minute > 59 || dt.second > 59) {
        return Status::Corruption("impossible DATETIME");
      }
      v->kind = ValueKind::kDateTime;
      v->dt = dt;
      return Status::Ok();
    }
    case static_cast<uint8_t>(ColumnType::kDateTime2): {
      // 5 bytes big-endian offset by 0x8000000000: (year * 13 + month) << 22 | day << 17 |
      // hour << 12 | minute << 6 | second; then the fraction (signed, big-endian).
      RS_ASSIGN_OR_RETURN(const unsigned digits, fsp());
      const size_t frac_bytes = FractionBytes(digits);
      RS_RETURN_IF_ERROR(need(5 + frac_bytes));
      const int64_t intpart = static_cast<int64_t>(Be(b, 5)) - 0x8000000000LL;
      int64_t frac = 0;
      if (frac_bytes == 1) frac = static_cast<int8_t>(b[5]) * int64_t{10000};
      if (frac_bytes == 2) frac = SignExtend(Be(b.substr(5), 2), 16) * 100;
      if (frac_bytes == 3) frac = SignExtend(Be(b.substr(5), 3), 24);
      bool negative;
      const DateTimeValue dt =
          internal::DateTimeFromPacked(intpart * (int64_t{1} << 24) + frac, &negative);
      if (negative || dt.day > 31 || dt.hour > 23 || dt.minute > 59 || dt.second > 59 ||
          dt.micro > 999999) {
        return Status::Corruption("impossible DATETIME");
      }
      v->kind = ValueKind::kDateTime;
      v->dt = dt;
      v->decimals = static_cast<uint8_t>(digits);
      return Status::Ok();
    }
    case static_cast<uint8_t>(ColumnType::kTimestamp): {
      RS_RETURN_IF_ERROR(need(4));
      v->kind = ValueKind::kTimestamp;
      v->ts = TimestampValue{static_cast<int64_t>(Le(b, 4)), 0};
      return Status::Ok();
    }
    case static_cast<uint8_t>(ColumnType::kTimestamp2): {
      // 4 bytes big-endian seconds, then the fraction (big-endian).
      RS_ASSIGN_OR_RETURN(const unsigned digits, fsp());
      const size_t frac_bytes = FractionBytes(digits);
      RS_RETURN_IF_ERROR(need(4 + frac_bytes));
      int64_t micro = 0;
      if (frac_bytes == 1) micro = static_cast<uint8_t>(b[4]) * int64_t{10000};
      if (frac_bytes == 2) micro = SignExtend(Be(b.substr(4), 2), 16) * 100;
      if (frac_bytes == 3) micro = SignExtend(Be(b.substr(4), 3), 24);
      if (micro < 0 || micro > 999999) return Status::Corruption("impossible TIMESTAMP");
      v->kind = ValueKind::kTimestamp;
      v->ts = TimestampValue{static_cast<int64_t>(Be(b, 4)), static_cast<uint32_t>(micro)};
      v->decimals = static_cast<uint8_t>(digits);
      return Status::Ok();
    }

    case static_cast<uint8_t>(ColumnType::kBit): {
      const size_t bytes = (column.meta + 7u) / 8u;
      if (bytes > 8) return Status::Corruption("BIT wider than 64 bits");
      RS_RETURN_IF_ERROR(need(bytes));
      v->kind = ValueKind::kBit;
      v->u = Be(b, bytes);
      return Status::Ok();
    }
    case static_cast<uint8_t>(ColumnType::kEnum): {
      if (column.meta != 1 && column.meta != 2) {
        return Status::Corruption("ENUM of " + std::to_string(column.meta) + " bytes");
      }
      RS_RETURN_IF_ERROR(need(column.meta));
      v->kind = ValueKind::kEnum;
      v->u = Le(b, column.meta);
      return Status::Ok();
    }
    case static_cast<uint8_t>(ColumnType::kSet): {
      if (column.meta < 1 || column.meta > 8) {
        return Status::Corruption("SET of " + std::to_string(column.meta) + " bytes");
      }
      RS_RETURN_IF_ERROR(need(column.meta));
      v->kind = ValueKind::kSet;
      v->u = Le(b, column.meta);
      return Status::Ok();
    }

    case static_cast<uint8_t>(ColumnType::kString):
    case static_cast<uint8_t>(ColumnType::kVarchar):
    case static_cast<uint8_t>(ColumnType::kVarString): {
      RS_RETURN_IF_ERROR(TakeLength(string_prefix(), &b));
      if (column.type == ColumnType::kString && column.collation == kBinaryCollation &&
          b.size() < column.meta) {
        // BINARY(n) is binlogged with its trailing 0x00 padding stripped; the stored value
        // (what SELECT returns) has all n bytes. CHAR with a text collation is not padded: the
        // server strips its trailing spaces on read as well.
        std::string* padded = NextScratch();
        padded->assign(b);
        padded->resize(column.meta, '\0');
        b = *padded;
      }
      text_or_binary(b);
      return Status::Ok();
    }
    case static_cast<uint8_t>(ColumnType::kTinyBlob):
    case static_cast<uint8_t>(ColumnType::kMediumBlob):
    case static_cast<uint8_t>(ColumnType::kLongBlob):
    case static_cast<uint8_t>(ColumnType::kBlob): {
      size_t prefix = column.meta;
      if (prefix == 0) {
        // Only the sized BLOB types imply their prefix when the table map had no metadata.
        if (column.type == ColumnType::kTinyBlob) prefix = 1;
        if (column.type == ColumnType::kMediumBlob) prefix = 3;
        if (column.type == ColumnType::kLongBlob) prefix = 4;
      }
      RS_RETURN_IF_ERROR(TakeLength(prefix, &b));
      text_or_binary(b);
      return Status::Ok();
    }
    case static_cast<uint8_t>(ColumnType::kJson): {
      if (partial_json) {
        // Json_diff_vector::write_binary: a 4-byte little-endian length, then the diffs.
        RS_RETURN_IF_ERROR(TakeLength(4, &b));
        v->kind = ValueKind::kJsonDiff;
        v->bytes = b;
        return Status::Ok();
      }
      RS_RETURN_IF_ERROR(TakeLength(column.meta, &b));
      v->kind = ValueKind::kJson;
      v->bytes = b;
      return Status::Ok();
    }
    case static_cast<uint8_t>(ColumnType::kGeometry): {
      RS_RETURN_IF_ERROR(TakeLength(column.meta, &b));
      v->kind = ValueKind::kGeometry;
      v->bytes = b;
      return Status::Ok();
    }
    case static_cast<uint8_t>(ColumnType::kVector): {
      RS_RETURN_IF_ERROR(TakeLength(column.meta, &b));
      if (b.size() % 4 != 0) {
        return Status::Corruption("VECTOR of " + std::to_string(b.size()) +
                                  " bytes is not a sequence of float32");
      }
      v->kind = ValueKind::kVector;
      v->bytes = b;
      return Status::Ok();
    }
    case static_cast<uint8_t>(ColumnType::kNull):
      v->kind = ValueKind::kNull;
      return Status::Ok();

    case kMariadbVarcharCompressed: {
      RS_RETURN_IF_ERROR(TakeLength(string_prefix(), &b));
      std::string_view plain;
      RS_RETURN_IF_ERROR(Inflate(b, column.meta, &plain));
      text_or_binary(plain);
      return Status::Ok();
    }
    case kMariadbBlobCompressed: {
      RS_RETURN_IF_ERROR(TakeLength(column.meta, &b));
      std::string_view plain;
      const uint64_t max =
          column.meta >= 1 && column.meta <= 4 ? (uint64_t{1} << (8 * column.meta)) - 1 : 0;
      RS_RETURN_IF_ERROR(Inflate(b, max, &plain));
      text_or_binary(plain);
      return Status::Ok();
    }

    default:
      return Status::Unsupported("column type " +
                                 std::to_string(static_cast<unsigned>(column.type)) +
                                 " cannot be decoded");
  }
}

}  // namespace replsync::capture
