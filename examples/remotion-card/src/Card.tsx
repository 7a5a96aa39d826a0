import React from 'react';
import {
  AbsoluteFill,
  Audio,
  Img,
  interpolate,
  spring,
  staticFile,
  useCurrentFrame,
  useVideoConfig,
} from 'remotion';
import type {CardProps} from './schema';

// Everything here is a pure function of the frame number and the props (no clocks, no
// randomness), so any frame range renders the same pixels as the whole video.
export const Card: React.FC<CardProps> = ({title, image, items, music, accent}) => {
  const frame = useCurrentFrame();
  const {fps, width, durationInFrames} = useVideoConfig();
  const enter = spring({frame, fps, config: {damping: 200}});
  const scale = width / 1280;
  const fadeOut = interpolate(frame, [durationInFrames - 15, durationInFrames], [1, 0], {
    extrapolateLeft: 'clamp',
    extrapolateRight: 'clamp',
  });
  return (
    <AbsoluteFill
      style={{
        background: `linear-gradient(135deg, #14142b 0%, ${accent} 160%)`,
        fontFamily: 'sans-serif',
        color: 'white',
        opacity: fadeOut,
      }}
    >
      {music ? <Audio src={staticFile(music)} /> : null}
      <div
        style={{
          position: 'absolute',
          left: 80 * scale,
          top: 70 * scale,
          fontSize: 64 * scale,
          fontWeight: 700,
          transform: `translateY(${(1 - enter) * 40 * scale}px)`,
          opacity: enter,
        }}
      >
        {title}
      </div>
      <Img
        src={staticFile(image)}
        style={{
          position: 'absolute',
          right: 100 * scale,
          top: 200 * scale,
          width: 320 * scale,
          height: 320 * scale,
          transform: `rotate(${frame * 1.5}deg) scale(${enter})`,
        }}
      />
      {items.map((item, i) => {
        const shown = spring({frame: frame - 15 - i * 10, fps, config: {damping: 200}});
        return (
          <div
            key={item.label}
            style={{
              position: 'absolute',
              left: 80 * scale,
              top: (220 + i * 90) * scale,
              width: 640 * scale,
              opacity: shown,
              transform: `translateX(${(1 - shown) * -60 * scale}px)`,
            }}
          >
            <div style={{fontSize: 32 * scale, marginBottom: 8 * scale}}>
              {item.label}: {Math.round(item.value * shown)}
            </div>
            <div
              style={{
                height: 18 * scale,
                width: `${item.value * shown}%`,
                background: accent,
                borderRadius: 9 * scale,
              }}
            />
          </div>
        );
      })}
    </AbsoluteFill>
  );
};
