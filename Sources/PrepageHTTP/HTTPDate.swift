/// Date formats of HTTP and of the API, computed without Foundation.
public enum HTTPDate {
    /// The IMF-fixdate of RFC 9110 §5.6.7 for seconds since 1970-01-01 UTC,
    /// e.g. `Sun, 06 Nov 1994 08:49:37 GMT` (always 29 bytes).
    public static func imfFixdate(epochSeconds: Int64) -> [UInt8] {
        let t = Civil(epochSeconds: epochSeconds)
        let days: [StaticString] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months: [StaticString] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ]
        var out: [UInt8] = []
        out.reserveCapacity(29)
        HTTPResponseWriter.appendStatic(&out, days[t.weekday])
        HTTPResponseWriter.appendStatic(&out, ", ")
        appendTwo(&out, t.day)
        out.append(Bytes.space)
        HTTPResponseWriter.appendStatic(&out, months[t.month - 1])
        out.append(Bytes.space)
        appendFour(&out, t.year)
        out.append(Bytes.space)
        appendTwo(&out, t.hour)
        out.append(Bytes.colon)
        appendTwo(&out, t.minute)
        out.append(Bytes.colon)
        appendTwo(&out, t.second)
        HTTPResponseWriter.appendStatic(&out, " GMT")
        return out
    }

    /// ``imfFixdate(epochSeconds:)`` as a `String`.
    public static func imfFixdateString(epochSeconds: Int64) -> String {
        String(decoding: imfFixdate(epochSeconds: epochSeconds), as: UTF8.self)
    }

    /// RFC 3339 in UTC with whole seconds, e.g. `2026-11-28T23:55:54Z`.
    public static func rfc3339(epochSeconds: Int64) -> String {
        let t = Civil(epochSeconds: epochSeconds)
        var out: [UInt8] = []
        out.reserveCapacity(20)
        appendFour(&out, t.year)
        out.append(0x2D)
        appendTwo(&out, t.month)
        out.append(0x2D)
        appendTwo(&out, t.day)
        out.append(0x54)  // T
        appendTwo(&out, t.hour)
        out.append(Bytes.colon)
        appendTwo(&out, t.minute)
        out.append(Bytes.colon)
        appendTwo(&out, t.second)
        out.append(0x5A)  // Z
        return String(decoding: out, as: UTF8.self)
    }

    private static func appendTwo(_ out: inout [UInt8], _ v: Int) {
        out.append(UInt8(v / 10 % 10) + 0x30)
        out.append(UInt8(v % 10) + 0x30)
    }

    private static func appendFour(_ out: inout [UInt8], _ v: Int) {
        let y = max(0, min(9_999, v))
        out.append(UInt8(y / 1_000) + 0x30)
        out.append(UInt8(y / 100 % 10) + 0x30)
        out.append(UInt8(y / 10 % 10) + 0x30)
        out.append(UInt8(y % 10) + 0x30)
    }

    /// A UTC civil time from epoch seconds (proleptic Gregorian calendar).
    struct Civil {
        var year, month, day, hour, minute, second, weekday: Int

        init(epochSeconds: Int64) {
            let s = Int(epochSeconds)
            var days = s / 86_400
            var rem = s % 86_400
            if rem < 0 {
                rem += 86_400
                days -= 1
            }
            hour = rem / 3_600
            minute = rem / 60 % 60
            second = rem % 60
            // 1970-01-01 was a Thursday (index 4, Sunday = 0).
            weekday = ((days % 7) + 11) % 7
            // Days to civil date: Howard Hinnant's algorithm.
            let z = days + 719_468
            let era = (z >= 0 ? z : z - 146_096) / 146_097
            let doe = z - era * 146_097
            let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365
            let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
            let mp = (5 * doy + 2) / 153
            day = doy - (153 * mp + 2) / 5 + 1
            month = mp < 10 ? mp + 3 : mp - 9
            year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        }
    }
}
