import {zColor} from '@remotion/zod-types';
import {z} from 'zod';

// The props of the Card composition. framefarm (and Remotion's studio) check input props
// against this schema before rendering; a failure names the field, e.g. items.0.value.
export const cardSchema = z.object({
  title: z.string().min(1).max(80),
  image: z.string().min(1), // a file in public/
  items: z
    .array(z.object({label: z.string().min(1), value: z.number().min(0).max(100)}))
    .max(6),
  music: z.string().nullable(), // a file in public/, or null for silence
  accent: zColor(),
});

export type CardProps = z.infer<typeof cardSchema>;
