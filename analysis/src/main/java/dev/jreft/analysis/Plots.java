package dev.jreft.analysis;

import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.HeatMapChart;
import org.knowm.xchart.HeatMapChartBuilder;
import org.knowm.xchart.VectorGraphicsEncoder;
import org.knowm.xchart.internal.chartpart.Chart;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** Charts of analysis results (XChart), the same in notebooks (inline) and on disk (PNG and SVG). */
public final class Plots {
    private Plots() {
    }

    /**
     * A patching grid as a heatmap: hooks down, tokens (or heads, for a grid across heads) across, the share of the
     * way to the source as colour.
     */
    public static HeatMapChart heatmap(ActivationPatching.Grid grid, List<String> tokens, String title) {
        System.setProperty("java.awt.headless", "true");
        HeatMapChart c = new HeatMapChartBuilder().width(760).height(Math.max(320, 60 + 22 * grid.hooks().size()))
                .title(title).xAxisTitle(grid.across() == ActivationPatching.Across.HEAD ? "head" : "token").build();
        // a position patch moves a share in [-1, 1]; one head moves a small part of it, so its scale is the grid's
        double range = grid.across() == ActivationPatching.Across.HEAD ? Math.max(1e-3, java.util.Arrays.stream(
                grid.effect()).flatMapToDouble(java.util.Arrays::stream).map(Math::abs).max().orElse(1)) : 1;
        range = Math.ceil(range * 100) / 100; // a legend of round numbers
        c.getStyler().setMin(-range).setMax(range).setDecimalPattern("0.00");
        List<Number[]> cells = new ArrayList<>();
        for (int h = 0; h < grid.hooks().size(); h++) {
            for (int t = 0; t < grid.positions(); t++) {
                cells.add(new Number[] {t, h, grid.effect()[h][t]});
            }
        }
        List<Object> x = new ArrayList<>();
        for (int t = 0; t < grid.positions(); t++) {
            x.add(grid.across() == ActivationPatching.Across.HEAD || t >= tokens.size() ? String.valueOf(t)
                    : t + " " + tokens.get(t));
        }
        c.addSeries(title, x, new ArrayList<Object>(grid.hooks()), cells);
        return c;
    }

    /**
     * Writes {@code chart} as {@code <stem>.png} and {@code <stem>.svg} in {@code dir} (each through a temporary
     * file, then renamed); returns the two paths.
     */
    public static List<Path> write(Chart<?, ?> chart, Path dir, String stem) throws IOException {
        System.setProperty("java.awt.headless", "true");
        Path png = dir.resolve(stem + ".png");
        Path svg = dir.resolve(stem + ".svg");
        Path tmp = Files.createTempFile(dir, stem, ".part");
        try {
            BitmapEncoder.saveBitmap(chart, tmp.toString(), BitmapEncoder.BitmapFormat.PNG); // appends .png
            Files.move(Path.of(tmp + ".png"), png, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
            VectorGraphicsEncoder.saveVectorGraphic(chart, tmp.toString(), VectorGraphicsEncoder.VectorGraphicsFormat.SVG);
            Files.move(Path.of(tmp + ".svg"), svg, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        } finally {
            Files.deleteIfExists(tmp);
            Files.deleteIfExists(Path.of(tmp + ".png"));
            Files.deleteIfExists(Path.of(tmp + ".svg"));
        }
        return List.of(png, svg);
    }
}
