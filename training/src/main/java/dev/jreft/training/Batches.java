package dev.jreft.training;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.Function;

/** How a run cuts its examples into the batches of one epoch. */
public interface Batches<E> {
    /** The number of batches every epoch has (the schedule's length is this × epochs). */
    int perEpoch(List<E> examples, int size);

    /** One epoch's batches, shuffled with {@code random}. */
    List<List<E>> epoch(List<E> examples, int size, Random random);

    /**
     * The examples shuffled and cut in order; {@code dropLast} drops the last partial batch (so batch shapes stay
     * few), without it the last batch is smaller.
     */
    static <E> Batches<E> shuffled(boolean dropLast) {
        return new Batches<>() {
            @Override
            public int perEpoch(List<E> examples, int size) {
                if (dropLast && examples.size() < size) {
                    throw new IllegalArgumentException("the training set (" + examples.size() + " examples) is"
                            + " smaller than one batch (" + size + ")");
                }
                return dropLast ? examples.size() / size : (examples.size() + size - 1) / size;
            }

            @Override
            public List<List<E>> epoch(List<E> examples, int size, Random random) {
                List<E> order = new ArrayList<>(examples);
                Collections.shuffle(order, random);
                List<List<E>> batches = new ArrayList<>();
                for (int i = 0; dropLast ? i + size <= order.size() : i < order.size(); i += size) {
                    batches.add(order.subList(i, Math.min(order.size(), i + size)));
                }
                return batches;
            }
        };
    }

    /**
     * Full batches of examples with equal {@code key} (DAS: the set of intervened variables, since one batch runs one
     * set of sites): each group shuffled and cut, the last partial batch of a group dropped, then the batches of all
     * groups shuffled together. {@code group} names what a group is, for the error when none fills a batch.
     */
    static <E, K> Batches<E> grouped(Function<E, K> key, String group) {
        return new Batches<>() {
            @Override
            public int perEpoch(List<E> examples, int size) {
                int n = 0;
                for (List<E> group : groups(examples).values()) {
                    n += group.size() / size;
                }
                if (n == 0) {
                    throw new IllegalArgumentException("no full batch of " + size + " examples for any " + group + " (sizes "
                            + groups(examples).values().stream().map(List::size).toList() + "); lower the batch size");
                }
                return n;
            }

            @Override
            public List<List<E>> epoch(List<E> examples, int size, Random random) {
                List<List<E>> batches = new ArrayList<>();
                for (List<E> group : groups(examples).values()) {
                    List<E> order = new ArrayList<>(group);
                    Collections.shuffle(order, random);
                    for (int i = 0; i + size <= order.size(); i += size) {
                        batches.add(order.subList(i, i + size));
                    }
                }
                Collections.shuffle(batches, random);
                return batches;
            }

            private Map<K, List<E>> groups(List<E> examples) {
                Map<K, List<E>> groups = new LinkedHashMap<>();
                for (E x : examples) {
                    groups.computeIfAbsent(key.apply(x), k -> new ArrayList<>()).add(x);
                }
                return groups;
            }
        };
    }
}
