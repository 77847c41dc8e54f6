import Foundation

/// Formats `x` with `decimals` digits after the point.
public func fixed(_ x: Double, _ decimals: Int) -> String {
    String(format: "%.\(decimals)f", x)
}

/// A table of text cells: rendered aligned for a terminal, or as CSV.
public struct Table: Sendable {
    public var header: [String]
    public var rows: [[String]] = []

    public init(header: [String]) {
        self.header = header
    }

    public mutating func append(_ row: [String]) {
        precondition(row.count == header.count, "row width differs from the header")
        rows.append(row)
    }

    /// Columns padded to their widest cell; the first left-aligned, the rest right-aligned.
    public var text: String {
        let widths = header.indices.map { c in ([header] + rows).map { $0[c].count }.max()! }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { c, cell in
                let pad = String(repeating: " ", count: widths[c] - cell.count)
                return c == 0 ? cell + pad : pad + cell
            }.joined(separator: "  ")
        }
        return ([line(header)] + rows.map(line)).joined(separator: "\n") + "\n"
    }

    /// RFC 4180 CSV (cells holding a comma or quote are quoted).
    public var csv: String {
        func cell(_ s: String) -> String {
            s.contains(",") || s.contains("\"") ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
        }
        return ([header] + rows).map { $0.map(cell).joined(separator: ",") }.joined(separator: "\n") + "\n"
    }
}

/// Hand-written SVG charts: no dependency, readable diffs in `docs/results/`.
public enum SVGChart {
    static let palette = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#9c755f"]

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")
    }

    /// Lines through points, one series each, on linear axes.
    public static func lines(
        title: String, xLabel: String, yLabel: String, series: [(name: String, points: [(Double, Double)])],
        yMin: Double? = nil, yMax: Double? = nil, width: Double = 720, height: Double = 420
    ) -> String {
        let all = series.flatMap(\.points)
        let x0 = all.map(\.0).min() ?? 0
        let x1 = max(all.map(\.0).max() ?? 1, x0 + 1e-9)
        let y0 = yMin ?? all.map(\.1).min() ?? 0
        let y1 = max(yMax ?? all.map(\.1).max() ?? 1, y0 + 1e-9)
        let (left, right, top, bottom) = (70.0, 170.0, 40.0, 50.0)
        let pw = width - left - right
        let ph = height - top - bottom
        func sx(_ x: Double) -> Double { left + (x - x0) / (x1 - x0) * pw }
        func sy(_ y: Double) -> Double { top + ph - (y - y0) / (y1 - y0) * ph }
        var svg = header(width, height, title)
        svg += axes(left: left, top: top, pw: pw, ph: ph, xLabel: xLabel, yLabel: yLabel, width: width, height: height)
        for i in 0...5 {
            let y = y0 + (y1 - y0) * Double(i) / 5
            svg += "<text x=\"\(left - 6)\" y=\"\(fixed(sy(y) + 4, 1))\" text-anchor=\"end\">\(fixed(y, 2))</text>\n"
            svg +=
                "<line x1=\"\(left)\" x2=\"\(left + pw)\" y1=\"\(fixed(sy(y), 1))\" y2=\"\(fixed(sy(y), 1))\" stroke=\"#ddd\"/>\n"
        }
        for i in 0...5 {
            let x = x0 + (x1 - x0) * Double(i) / 5
            svg +=
                "<text x=\"\(fixed(sx(x), 1))\" y=\"\(top + ph + 18)\" text-anchor=\"middle\">\(fixed(x, 2))</text>\n"
        }
        for (i, s) in series.enumerated() {
            let color = palette[i % palette.count]
            let d = s.points.map { "\(fixed(sx($0.0), 1)),\(fixed(sy($0.1), 1))" }.joined(separator: " ")
            svg += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" points=\"\(d)\"/>\n"
            for p in s.points {
                svg += "<circle cx=\"\(fixed(sx(p.0), 1))\" cy=\"\(fixed(sy(p.1), 1))\" r=\"3\" fill=\"\(color)\"/>\n"
            }
            svg += legend(i, s.name, color, x: left + pw + 15, top: top)
        }
        return svg + "</svg>\n"
    }

    /// Bars grouped by category, one bar per series in each group, on a log₁₀ or linear axis.
    public static func groupedBars(
        title: String, yLabel: String, groups: [String], series: [(name: String, values: [Double])],
        logScale: Bool = false, width: Double = 980, height: Double = 460
    ) -> String {
        let values = series.flatMap(\.values).filter { $0 > 0 }
        let (left, right, top, bottom) = (80.0, 170.0, 40.0, 110.0)
        let pw = width - left - right
        let ph = height - top - bottom
        let lo = logScale ? floor(log10(values.min() ?? 0.1)) : 0
        let hi = logScale ? ceil(log10(values.max() ?? 10)) : niceCeiling((values.max() ?? 1) * 1.02)
        func sy(_ v: Double) -> Double {
            let t = logScale ? (log10(max(v, pow(10, lo))) - lo) / max(hi - lo, 1e-9) : v / hi
            return top + ph - t * ph
        }
        var svg = header(width, height, title)
        svg += axes(left: left, top: top, pw: pw, ph: ph, xLabel: "", yLabel: yLabel, width: width, height: height)
        let ticks =
            logScale ? stride(from: lo, through: hi, by: 1).map { pow(10, $0) } : (0...4).map { hi * Double($0) / 4 }
        for t in ticks {
            svg +=
                "<text x=\"\(left - 6)\" y=\"\(fixed(sy(t) + 4, 1))\" text-anchor=\"end\">\(String(format: "%g", t))</text>\n"
            svg +=
                "<line x1=\"\(left)\" x2=\"\(left + pw)\" y1=\"\(fixed(sy(t), 1))\" y2=\"\(fixed(sy(t), 1))\" stroke=\"#ddd\"/>\n"
        }
        let groupWidth = pw / Double(max(groups.count, 1))
        let barWidth = groupWidth * 0.8 / Double(max(series.count, 1))
        for (g, name) in groups.enumerated() {
            let gx = left + Double(g) * groupWidth + groupWidth * 0.1
            for (i, s) in series.enumerated() where g < s.values.count {
                let y = sy(s.values[g])
                svg +=
                    "<rect x=\"\(fixed(gx + Double(i) * barWidth, 1))\" y=\"\(fixed(y, 1))\" width=\"\(fixed(barWidth * 0.92, 1))\" height=\"\(fixed(top + ph - y, 1))\" fill=\"\(palette[i % palette.count])\"><title>\(escape(s.name)) \(escape(name)): \(String(format: "%.3g", s.values[g]))</title></rect>\n"
            }
            let cx = gx + groupWidth * 0.4
            svg +=
                "<text transform=\"translate(\(fixed(cx, 1)),\(top + ph + 12)) rotate(30)\" text-anchor=\"start\">\(escape(name))</text>\n"
        }
        for (i, s) in series.enumerated() {
            svg += legend(i, s.name, palette[i % palette.count], x: left + pw + 15, top: top)
        }
        return svg + "</svg>\n"
    }

    /// The smallest of 1, 2, 2.5, 4, 5 × 10ⁿ at least `x`: an axis end with round ticks.
    static func niceCeiling(_ x: Double) -> Double {
        guard x > 0 else { return 1 }
        let scale = pow(10, floor(log10(x)))
        return ([1, 2, 2.5, 4, 5, 10].first { $0 * scale >= x } ?? 10) * scale
    }

    private static func header(_ width: Double, _ height: Double, _ title: String) -> String {
        """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" font-family="sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(Int(width / 2))" y="22" text-anchor="middle" font-size="15">\(escape(title))</text>

        """
    }

    private static func axes(
        left: Double, top: Double, pw: Double, ph: Double, xLabel: String, yLabel: String, width: Double, height: Double
    ) -> String {
        """
        <line x1="\(left)" y1="\(top + ph)" x2="\(left + pw)" y2="\(top + ph)" stroke="black"/>
        <line x1="\(left)" y1="\(top)" x2="\(left)" y2="\(top + ph)" stroke="black"/>
        <text x="\(fixed(left + pw / 2, 1))" y="\(fixed(height - 12, 1))" text-anchor="middle">\(escape(xLabel))</text>
        <text transform="translate(16,\(fixed(top + ph / 2, 1))) rotate(-90)" text-anchor="middle">\(escape(yLabel))</text>

        """
    }

    private static func legend(_ i: Int, _ name: String, _ color: String, x: Double, top: Double) -> String {
        let y = top + 10 + Double(i) * 20
        return "<rect x=\"\(x)\" y=\"\(y - 9)\" width=\"12\" height=\"12\" fill=\"\(color)\"/>"
            + "<text x=\"\(x + 18)\" y=\"\(y + 2)\">\(escape(name))</text>\n"
    }
}
