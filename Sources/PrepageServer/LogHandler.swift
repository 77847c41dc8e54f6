import Logging
import PrepageSockets

/// A swift-log handler writing one line per record to standard error, in one
/// `write` each, through ``LogQueue`` (a bounded queue with its own writer
/// thread; lines past its capacity are dropped and counted): `text` (`<time> <level> <message> key=value…`) or `json`
/// (one object per line). Bootstrap it once, in the executable.
public struct PrepageLogHandler: LogHandler {
    public enum Format: String, Sendable, CaseIterable {
        case text, json
    }

    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    private let format: Format
    private let label: String

    public init(label: String, level: Logger.Level, format: Format) {
        self.label = label
        logLevel = level
        self.format = format
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        // Handler metadata (a loop number) and the event's, sorted by key so lines read the same
        // every time; no merged dictionary is built.
        var fields: [(key: String, value: Logger.Metadata.Value)] = []
        fields.reserveCapacity(metadata.count + (event.metadata?.count ?? 0))
        for (key, value) in metadata where event.metadata?[key] == nil { fields.append((key, value)) }
        if let extra = event.metadata { for (key, value) in extra { fields.append((key, value)) } }
        fields.sort { $0.key < $1.key }
        var line: [UInt8] = []
        line.reserveCapacity(256)
        let now = System.wallNanoseconds()
        switch format {
        case .text:
            appendRFC3339(nanoseconds: now, into: &line)
            line.append(0x20)
            line.append(contentsOf: event.level.rawValue.utf8)
            line.append(0x20)
            line.append(contentsOf: event.message.description.utf8)
            for (key, value) in fields {
                line.append(0x20)
                line.append(contentsOf: key.utf8)
                line.append(UInt8(ascii: "="))
                let text = Self.text(value)
                if text.utf8.contains(where: { $0 == 0x20 || $0 == 0x22 || $0 < 0x20 }) {
                    var quoted = JSONWriter()
                    quoted.string(text)
                    line.append(contentsOf: quoted.bytes)
                } else {
                    line.append(contentsOf: text.utf8)
                }
            }
        case .json:
            var w = JSONWriter(reusing: line)
            w.raw("{\"time\":")
            w.timestamp(nanoseconds: now)
            w.raw(",\"level\":")
            w.string(event.level.rawValue)
            w.raw(",\"logger\":")
            w.string(label)
            w.raw(",\"message\":")
            w.string(event.message.description)
            for (key, value) in fields where !Self.reserved.contains(key) {
                w.raw(",")
                w.string(key)
                w.raw(":")
                Self.json(value, &w)
            }
            w.raw("}")
            line = w.bytes
        }
        line.append(0x0A)
        // Through the bounded queue: a stalled stderr never blocks the caller (an event loop).
        LogQueue.shared.enqueue(line, json: format == .json)
    }

    private static let reserved: Set<String> = ["time", "level", "logger", "message"]

    /// A metadata value as JSON: a number given as a number (`.stringConvertible` of an
    /// integer or a finite floating-point value: `"status":200`) is written as one; a
    /// string stays a string, even when it holds digits (a request id); arrays and
    /// dictionaries keep their shape.
    static func json(_ value: Logger.Metadata.Value, _ w: inout JSONWriter) {
        switch value {
        case .string(let s):
            w.string(s)
        case .stringConvertible(let c):
            switch c {
            case let v as Int: w.int(v)
            case let v as UInt64: w.uint(v)
            case let v as Int64: w.int(Int(v))
            case let v as UInt: w.uint(v)
            case let v as Int32: w.int(Int(v))
            case let v as UInt32: w.uint(v)
            case let v as Double where v.isFinite: w.double(v)
            case let v as Bool: w.bool(v)
            default: w.string(c.description)
            }
        case .array(let values):
            w.raw("[")
            for (i, v) in values.enumerated() {
                if i > 0 { w.raw(",") }
                json(v, &w)
            }
            w.raw("]")
        case .dictionary(let d):
            w.raw("{")
            for (i, key) in d.keys.sorted().enumerated() {
                if i > 0 { w.raw(",") }
                w.string(key)
                w.raw(":")
                json(d[key]!, &w)
            }
            w.raw("}")
        }
    }

    /// A metadata value as text, without interpolation for the common cases.
    @inline(__always)
    private static func text(_ value: Logger.Metadata.Value) -> String {
        switch value {
        case .string(let s): s
        case .stringConvertible(let c): c.description
        default: "\(value)"
        }
    }
}
