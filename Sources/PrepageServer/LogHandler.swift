import Logging
import PrepageSockets

/// A swift-log handler writing one line per record to standard error, in one
/// `write` each: `text` (`<time> <level> <message> key=value…`) or `json`
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
        var all = metadata
        if let extra = event.metadata { all.merge(extra) { $1 } }
        var line: [UInt8] = []
        line.reserveCapacity(256)
        let now = System.wallNanoseconds()
        switch format {
        case .text:
            appendRFC3339(nanoseconds: now, into: &line)
            line.append(0x20)
            line.append(contentsOf: event.level.rawValue.utf8)
            line.append(0x20)
            line.append(contentsOf: "\(event.message)".utf8)
            for key in all.keys.sorted() {
                line.append(0x20)
                line.append(contentsOf: key.utf8)
                line.append(UInt8(ascii: "="))
                let value = "\(all[key]!)"
                if value.utf8.contains(where: { $0 == 0x20 || $0 == 0x22 || $0 < 0x20 }) {
                    var w = JSONWriter()
                    w.string(value)
                    line.append(contentsOf: w.bytes)
                } else {
                    line.append(contentsOf: value.utf8)
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
            w.string("\(event.message)")
            for key in all.keys.sorted() where !["time", "level", "logger", "message"].contains(key) {
                w.raw(",")
                w.string(key)
                w.raw(":")
                w.string("\(all[key]!)")
            }
            w.raw("}")
            line = w.bytes
        }
        line.append(0x0A)
        line.withUnsafeBytes { System.writeStandardError($0) }
    }
}
